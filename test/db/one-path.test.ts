/**
 * One way to each table (issue #23): the hot tables are reached only through SQL (db.hot, or
 * db.in(tx) inside a Prisma transaction), never through Prisma's model API, anywhere in src/.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { HOT_TABLES } from '../../src/db/hot-sql.js'

const camel = (table: string) => table.replace(/_(\w)/g, (_, c: string) => c.toUpperCase())
const models = new RegExp(`\\.(${HOT_TABLES.map(camel).join('|')})\\.`)

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? sources(join(dir, e.name))
      : e.name.endsWith('.ts')
        ? [join(dir, e.name)]
        : [],
  )
}

t.test('no model API call on a hot table in src/', async (t) => {
  const files = sources('src')
  t.ok(files.length > 50, 'read the tree')
  const found = files.flatMap((f) =>
    readFileSync(f, 'utf8')
      .split('\n')
      .map((line, i) => ({ at: `${f}:${i + 1}`, line }))
      .filter(({ line }) => models.test(line)),
  )
  t.same(found, [], 'every hot table through SQL')
})

t.test('the check finds a model call when there is one', async (t) => {
  t.ok(models.test('await tx.spaceMember.findUnique({ where })'))
  t.ok(models.test('db.prisma.issuedCredential.deleteMany()'))
  t.notOk(models.test('await tx.space.findUnique({ where })'))
})

t.test('every hot table is one the schema maps', async (t) => {
  const schema = readFileSync('prisma/schema.prisma', 'utf8')
  for (const table of HOT_TABLES) t.match(schema, `@@map("${table}")`, table)
})

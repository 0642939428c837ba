// Writes a new SQL migration for both databases from the change in prisma/schema.prisma.
//   npm run db:migration -- <name>
// The diff runs between prisma/migrations/schema.snapshot.prisma (the datamodel as of the last
// migration) and the current schema, so no shadow database is needed. test/db/migrations.test.ts
// fails while the snapshot and the schema disagree, so a model change cannot ship without its SQL.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { tmpdir } from 'node:os'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const name = process.argv[2]
if (!name || !/^[a-z0-9_]+$/.test(name)) {
  console.error('usage: npm run db:migration -- <name in snake_case>')
  process.exit(2)
}
const schemaPath = join(root, 'prisma/schema.prisma')
const snapshotPath = join(root, 'prisma/migrations/schema.snapshot.prisma')
const prisma = join(root, 'node_modules/prisma/build/index.js')
const work = join(tmpdir(), `gatehouse-migration-${process.pid}`)
mkdirSync(work, { recursive: true })

const withProvider = (text, provider) =>
  text.replace('provider = "sqlite"', `provider = "${provider}"`)
// The JS schema engine diffs PostgreSQL through a live connection: use GATEHOUSE_PRISMA_CLI_PG_URL,
// or start a throwaway cluster (scripts/pg-cluster.sh) for the duration of this script.
let pgUrl = process.env.GATEHOUSE_PRISMA_CLI_PG_URL
let pgDir = null
if (!pgUrl) {
  pgDir = join(work, 'pg')
  const port = String(20000 + (process.pid % 20000))
  pgUrl = execFileSync('bash', [join(root, 'scripts/pg-cluster.sh'), 'start', pgDir, port], {
    encoding: 'utf8',
  }).trim()
}
process.on('exit', () => {
  if (pgDir) execFileSync('bash', [join(root, 'scripts/pg-cluster.sh'), 'stop', pgDir])
  rmSync(work, { recursive: true, force: true })
})
const providers = [
  ['sqlite', 'file::memory:'],
  ['postgresql', pgUrl],
]
const current = readFileSync(schemaPath, 'utf8')
const previous = existsSync(snapshotPath) ? readFileSync(snapshotPath, 'utf8') : null

for (const [provider, url] of providers) {
  const to = join(work, `to.${provider}.prisma`)
  writeFileSync(to, withProvider(current, provider))
  const from =
    previous === null
      ? ['--from-empty']
      : ['--from-schema-datamodel', join(work, `from.${provider}.prisma`)]
  if (previous !== null) writeFileSync(from[1], withProvider(previous, provider))
  let sql = execFileSync(
    process.execPath,
    [prisma, 'migrate', 'diff', ...from, '--to-schema-datamodel', to, '--script'],
    {
      cwd: root,
      env: {
        ...process.env,
        GATEHOUSE_PRISMA_CLI_SCHEMA: to,
        GATEHOUSE_PRISMA_CLI_URL: url,
        CHECKPOINT_DISABLE: '1',
      },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  )
  // Tables are created in whatever schema the connection's search_path names, so that tests (and
  // operators) can keep several Gatehouse databases in one PostgreSQL database.
  sql = sql
    .replace(/-- CreateSchema\nCREATE SCHEMA IF NOT EXISTS "public";\n+/, '')
    .replaceAll('"public".', '')
  if (!/\b(CREATE|ALTER|DROP)\b/.test(sql)) {
    console.error(`no schema change for ${provider}; nothing written`)
    process.exit(1)
  }
  const dir = join(root, 'prisma/migrations', provider)
  mkdirSync(dir, { recursive: true })
  const seq = readdirSync(dir).filter((d) => /^\d{4}_/.test(d)).length + 1
  const target = join(dir, `${String(seq).padStart(4, '0')}_${name}`)
  mkdirSync(target)
  writeFileSync(join(target, 'migration.sql'), sql)
  console.log(`wrote ${target}/migration.sql`)
}
writeFileSync(snapshotPath, current)

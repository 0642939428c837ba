/**
 * The documented configuration matches the real one: every GATEHOUSE_* variable the schema knows is
 * in .env.example and the README, and every variable they mention exists.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { envSchema } from '../src/config.js'
import { PACKAGE_ROOT } from '../src/paths.js'

const known = Object.keys(envSchema.shape).sort()
const mentioned = (text: string) =>
  [...new Set([...text.matchAll(/\bGATEHOUSE_[A-Z0-9_]+\b/g)].map((m) => m[0]))].filter(
    (v) => !/^GATEHOUSE_(TEST|BENCH|PRISMA_CLI)_/.test(v),
  )

t.test('.env.example documents exactly the known variables', async (t) => {
  t.same(mentioned(readFileSync(join(PACKAGE_ROOT, '.env.example'), 'utf8')).sort(), known)
})

t.test(
  'the README configuration table lists every known variable, and no unknown one',
  async (t) => {
    const readme = readFileSync(join(PACKAGE_ROOT, 'README.md'), 'utf8')
    const inReadme = mentioned(readme)
    for (const v of known) t.ok(inReadme.includes(v), `${v} is in the README`)
    for (const v of inReadme) t.ok(known.includes(v), `${v} (README) is a real variable`)
  },
)

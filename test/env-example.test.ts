/**
 * The documented configuration is the real one: docs/configuration.md and .env.example are what
 * scripts/config-docs.ts writes from src/config.ts (so they cannot drift), they name every
 * GATEHOUSE_* variable the schema knows and no other, and the README names no unknown variable.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { SETTINGS, loadConfig } from '../src/config.js'
import { PACKAGE_ROOT } from '../src/paths.js'
import {
  DOCS_FILE,
  ENV_EXAMPLE_FILE,
  renderDocs,
  renderEnvExample,
} from '../scripts/config-docs.js'

const known = SETTINGS.map((s) => s.env).sort()
const mentioned = (text: string) =>
  [...new Set([...text.matchAll(/\bGATEHOUSE_[A-Z0-9_]+\b/g)].map((m) => m[0]))].filter(
    (v) => !/^GATEHOUSE_(TEST|BENCH|PRISMA_CLI)_/.test(v),
  )
const regenerate = 'run `npx tsx scripts/config-docs.ts` and commit the result'

t.test('docs/configuration.md is what the script writes from the schema', async (t) => {
  t.equal(readFileSync(DOCS_FILE, 'utf8'), await renderDocs(), regenerate)
})

t.test('.env.example is what the script writes from the schema', async (t) => {
  t.equal(readFileSync(ENV_EXAMPLE_FILE, 'utf8'), renderEnvExample(), regenerate)
})

t.test('both name exactly the known variables, each with its own entry', async (t) => {
  const docs = readFileSync(DOCS_FILE, 'utf8')
  const example = readFileSync(ENV_EXAMPLE_FILE, 'utf8')
  t.same(mentioned(example).sort(), known)
  t.same(mentioned(docs).sort(), known)
  for (const v of known) {
    t.match(docs, new RegExp(`^\\| \`${v}\` +\\|`, 'm'), `${v} has a row in the docs`)
    t.match(example, new RegExp(`^(# )?${v}=`, 'm'), `${v} has a line in .env.example`)
  }
})

t.test('.env.example, loaded as it is, is the default configuration', async (t) => {
  const env: Record<string, string> = {}
  for (const m of readFileSync(ENV_EXAMPLE_FILE, 'utf8').matchAll(/^(GATEHOUSE_\w+)=(.*)$/gm)) {
    env[m[1]!] = m[2]!
  }
  t.same(loadConfig(env), loadConfig({}))
})

t.test('the README names no variable that does not exist', async (t) => {
  const readme = readFileSync(join(PACKAGE_ROOT, 'README.md'), 'utf8')
  for (const v of mentioned(readme)) t.ok(known.includes(v), `${v} (README) is a real variable`)
  t.match(readme, /docs\/configuration\.md/, 'and links the configuration page')
})

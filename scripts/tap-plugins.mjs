// Before `tap` runs: makes tap's built Test class match the plugin list in package.json.
// package.json leaves tap's ts-node plugin out (tests load through tsx, docs/architecture.md). tap
// notices a stale build and rebuilds it, but the run that notices still starts every test process
// with the old plugins' loaders, ts-node among them: on a fresh install (CI) the whole first run.
// So rebuild here, once, when the build still holds a plugin the configuration leaves out.
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const excluded = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).tap?.plugin ?? [])
  .filter((p) => p.startsWith('!'))
  .map((p) => p.slice(1))
const built = join(
  dirname(createRequire(import.meta.url).resolve('@tapjs/test/package.json')),
  'test-built/src/index.ts',
)
const source = existsSync(built) ? readFileSync(built, 'utf8') : ''
if (!source || excluded.some((p) => source.includes(`from "${p}"`))) {
  console.error('tap: building its Test class for the configured plugins')
  execFileSync(process.execPath, [join(root, 'node_modules/tap/dist/esm/run.mjs'), 'build'], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
  })
}

import { readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { printResult, writeResult, writeResultsPage, type Bench } from './_lib.js'

/**
 * `npm run bench [-- name …]`: runs every bench/*.ts (or the named ones), prints each one's figures
 * and ratios, writes bench/results/<name>.json, and rewrites the latest figures in bench/RESULTS.md. GATEHOUSE_BENCH_SECONDS sets the measuring time
 * of each phase (default 3).
 */
const here = dirname(fileURLToPath(import.meta.url))
const wanted = process.argv.slice(2)
const seconds = Number(process.env.GATEHOUSE_BENCH_SECONDS ?? 3)
const files = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && !f.startsWith('_') && f !== 'run.ts')
  .filter((f) => wanted.length === 0 || wanted.includes(f.replace(/\.ts$/, '')))
  .sort()

let failed = false
for (const file of files) {
  const bench = ((await import(pathToFileURL(join(here, file)).href)) as { default: Bench }).default
  try {
    const result = await bench.run({ seconds })
    printResult(result)
    console.log(`  wrote ${writeResult(result)}`)
  } catch (err) {
    failed = true
    console.error(`bench ${file} failed:`, err)
  }
}
console.log(`\nwrote ${await writeResultsPage()}`)
process.exit(failed ? 1 : 0)

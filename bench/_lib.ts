import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { format, resolveConfig } from 'prettier'
import { PACKAGE_ROOT } from '../src/paths.js'

/**
 * The shared bench toolkit. A benchmark measures its subject and a baseline in the same run, on the
 * same machine, and reports the ratio: absolute numbers on a 2-core CI box mean little, ratios do.
 */

export interface Figure {
  name: string
  value: number
  unit: string
}

export interface BenchResult {
  bench: string
  figures: Figure[]
  /** subject ÷ baseline (higher is better unless the bench says otherwise). */
  ratios: Record<string, number>
  targets?: Record<string, { target: string; met: boolean }>
  notes?: string[]
}

export interface Bench {
  name: string
  run(opts: { seconds: number }): Promise<BenchResult>
}

export function percentile(sortedMs: number[], p: number): number {
  if (sortedMs.length === 0) return NaN
  const i = Math.min(sortedMs.length - 1, Math.ceil((p / 100) * sortedMs.length) - 1)
  return sortedMs[Math.max(0, i)]!
}

/** Runs `fn` for `seconds` (after a short warm-up) and returns ops/s. */
export async function opsPerSecond(
  fn: () => unknown | Promise<unknown>,
  seconds: number,
): Promise<number> {
  const warmUntil = performance.now() + Math.min(200, seconds * 100)
  while (performance.now() < warmUntil) await fn()
  let n = 0
  const start = performance.now()
  const end = start + seconds * 1000
  while (performance.now() < end) {
    await fn()
    n++
  }
  return n / ((performance.now() - start) / 1000)
}

export interface LoadResult {
  requests: number
  perSecond: number
  latenciesMs: number[]
  errors: number
}

export interface LoadOptions {
  /** Several URLs (the same path on several servers): requests go to them in turn. */
  url: string | string[]
  method?: 'GET' | 'POST'
  /** Fixed request bodies, sent round-robin. */
  bodies?: string[]
  /** Fixed header sets, sent round-robin (paired with bodies by index when both are given). */
  headers?: Record<string, string>[]
  concurrency: number
  seconds: number
  maxRequests?: number
  /** Open loop: start requests at this fixed rate (at most `concurrency` in flight) instead of back to back. */
  ratePerSec?: number
  /** Before measuring, unrecorded GETs to this URL (a no-op of the same server) for `warmupMs`. */
  warmupUrl?: string
  warmupMs?: number
}

/**
 * A closed-loop HTTP load on loopback from a worker thread (so the load generator does not share
 * the server's event loop; one thread for the whole run): `concurrency` keep-alive clients, each
 * sending its next request when the previous answer arrives, until `seconds` pass or `maxRequests`
 * are sent.
 */
export async function httpLoad(opts: LoadOptions): Promise<LoadResult> {
  for (const url of [opts.url].flat()) {
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(new URL(url).hostname)) {
      throw new Error('benchmarks send traffic to loopback only')
    }
  }
  const worker = loadWorker()
  const id = nextLoad++
  const result = await new Promise<LoadResult>((resolve, reject) => {
    const onMessage = (m: { id: number; result: LoadResult }) => {
      if (m.id !== id) return
      worker.off('message', onMessage)
      worker.off('error', reject)
      resolve(m.result)
    }
    worker.on('message', onMessage)
    worker.once('error', reject)
    worker.ref()
    worker.postMessage({ id, opts })
  }).finally(() => worker.unref())
  result.latenciesMs.sort((a, b) => a - b)
  return result
}

let worker: Worker | undefined
let nextLoad = 0

/** One load-generator thread for the whole run (see _load-worker.mjs); it never holds the process. */
function loadWorker(): Worker {
  if (!worker) {
    worker = new Worker(new URL('./_load-worker.mjs', import.meta.url))
    worker.unref()
    // A load that crashed the thread fails its bench; the next load gets a fresh thread.
    worker.once('exit', () => (worker = undefined))
  }
  return worker
}

/**
 * Brings back-to-back loopback traffic to its steady state before a sequential phase: no-op
 * requests (`/xrpc/_health`) one at a time for `seconds`, in 1-second rounds. On this 2-core VM a
 * fresh process's sequential no-op rate rises from about 2,500 to 6,000–8,000/s over its first ten
 * seconds or so of such traffic, in steps, and an exchange's rate with it. The cause lies below the
 * process: the server's time in the kernel's socket write (writev) falls from ~90 to ~25 us per
 * response, while a postMessage ping-pong between two threads runs at one rate from the start.
 * Returns the first and last rounds' rates, for the notes.
 */
export async function settle(
  origin: string,
  seconds = 10,
): Promise<{ firstPerSec: number; lastPerSec: number }> {
  const rates: number[] = []
  for (let i = 0; i < seconds; i++) {
    const round = await httpLoad({
      url: `${origin}/xrpc/_health`,
      concurrency: 1,
      seconds: 1,
      maxRequests: 1_000_000,
    })
    rates.push(round.perSecond)
  }
  return { firstPerSec: rates[0]!, lastPerSec: rates.at(-1)! }
}

/**
 * The latency floor of this harness and machine: p99 of a no-op request (`/xrpc/_health` of the
 * server at `origin`) at the same paced rate. A latency target is read against it.
 */
export async function pacedFloorP99(origin: string, ratePerSec: number, seconds: number) {
  const floor = await httpLoad({
    url: `${origin}/xrpc/_health`,
    concurrency: 64,
    seconds: seconds + 5,
    maxRequests: Math.ceil(ratePerSec * seconds),
    ratePerSec,
    warmupUrl: `${origin}/xrpc/_health`,
  })
  return percentile(floor.latenciesMs, 99)
}

export function writeResult(result: BenchResult): string {
  const dir = join(PACKAGE_ROOT, 'bench/results')
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `${result.bench}.json`)
  writeFileSync(file, `${JSON.stringify({ ...result, at: new Date().toISOString() }, null, 2)}\n`)
  return file
}

export function printResult(result: BenchResult): void {
  console.log(`\n== ${result.bench}`)
  for (const f of result.figures)
    console.log(`  ${f.name.padEnd(44)} ${fmt(f.value).padStart(12)} ${f.unit}`)
  for (const [k, v] of Object.entries(result.ratios))
    console.log(`  ratio ${k.padEnd(38)} ${v.toFixed(3).padStart(12)}`)
  for (const [k, v] of Object.entries(result.targets ?? {})) {
    console.log(`  target ${k.padEnd(37)} ${v.target.padStart(12)} ${v.met ? 'met' : 'NOT MET'}`)
  }
  for (const n of result.notes ?? []) console.log(`  note: ${n}`)
}

function fmt(v: number): string {
  return Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2)
}

const LATEST_BEGIN = '<!-- latest figures: written by `npm run bench`, do not edit by hand -->'
const LATEST_END = '<!-- end of latest figures -->'

/**
 * Rewrites the "Latest figures" part of bench/RESULTS.md from bench/results/*.json: each bench's
 * newest figures, ratios and targets, with the time it ran. A bench with no result file here (a run
 * of some benches only, in a fresh checkout) keeps the section the page already had. The dated
 * journals below stay as written.
 */
export async function writeResultsPage(): Promise<string> {
  const dir = join(PACKAGE_ROOT, 'bench/results')
  const results = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as BenchResult & { at: string })
  const page = join(PACKAGE_ROOT, 'bench/RESULTS.md')
  const text = readFileSync(page, 'utf8')
  const begin = text.indexOf(LATEST_BEGIN)
  const end = text.indexOf(LATEST_END)
  if (begin < 0 || end < begin)
    throw new Error('bench/RESULTS.md: the latest-figures markers are missing')
  const sections = new Map<string, string>()
  // The page's sections as they are: `### <bench> (<time> UTC)` up to the next one.
  for (const old of text.slice(begin + LATEST_BEGIN.length, end).split(/^(?=### )/m)) {
    const name = /^### (\S+) \(/.exec(old)?.[1]
    if (name) sections.set(name, old.trimEnd())
  }
  for (const r of results) {
    const lines = [`### ${r.bench} (${r.at.slice(0, 16).replace('T', ' ')} UTC)`, '']
    lines.push('| figure | value |', '| --- | --- |')
    for (const f of r.figures) lines.push(`| ${f.name} | ${fmt(f.value)} ${f.unit} |`)
    for (const [k, v] of Object.entries(r.ratios)) lines.push(`| ratio ${k} | ${v.toFixed(3)} |`)
    for (const [k, v] of Object.entries(r.targets ?? {}))
      lines.push(`| target ${k} | ${v.target}: ${v.met ? 'met' : '**not met**'} |`)
    lines.push('', ...(r.notes ?? []).map((n) => `- ${n}`))
    sections.set(r.bench, lines.join('\n').trimEnd())
  }
  const latest = [...sections.keys()].sort().map((name) => `${sections.get(name)!}\n\n`)
  const next =
    text.slice(0, begin) +
    [LATEST_BEGIN, '', ...latest].join('\n') +
    LATEST_END +
    text.slice(end + LATEST_END.length)
  // Formatted as the rest of the tree is, so `prettier --check` stays clean after a run.
  writeFileSync(page, await format(next, { ...(await resolveConfig(page)), filepath: page }))
  return page
}

import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'

/**
 * Moves SQLite's WAL checkpoints off the event loop. With `synchronous = NORMAL` a commit only
 * appends to the WAL; the fsyncs happen when the WAL is copied back into the database file. SQLite
 * does that copy inside whichever commit crosses the size threshold, which on a slow disk stalls
 * every request behind it for tens of milliseconds. Instead the serving connection turns automatic
 * checkpoints off and this worker thread, with a connection of its own, checkpoints on a timer
 * (PASSIVE: it never waits for, nor blocks, the writer).
 *
 * The WAL file keeps the size of its longest log. Cutting it back must not happen in a request:
 * with `journal_size_limit` the commit that restarts the log truncates the file, which stalled the
 * event loop for 20–60 ms after a busy spell. So this thread cuts it (a TRUNCATE checkpoint) once
 * the file has grown past `truncateAboveBytes` and the database has been quiet — no new frame, all
 * copied back — for `quietTicks` ticks. TRUNCATE takes the writer lock; a commit arriving in those
 * few milliseconds waits for it, and if SQLite refuses it as busy instead, the hot statements retry
 * (hot-sql.ts).
 */
export class Checkpointer {
  private readonly ended: Promise<void>

  private constructor(private readonly worker: Worker) {
    this.ended = new Promise((resolve) => worker.once('exit', () => resolve()))
    // A worker that fails leaves checkpoints to the next start; it must not take the service down.
    worker.on('error', () => {})
  }

  static start(
    path: string,
    opts: { intervalMs: number; truncateAboveBytes: number; quietTicks: number },
  ): Checkpointer {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        path,
        ...opts,
        driver: require.resolve('better-sqlite3'),
      },
      stdout: false,
      stderr: false,
    })
    worker.unref()
    return new Checkpointer(worker)
  }

  /** A last checkpoint (the WAL is truncated when nothing holds it), then the thread ends. */
  async stop(): Promise<void> {
    this.worker.postMessage('stop')
    const timer = setTimeout(() => void this.worker.terminate(), 5000)
    await this.ended
    clearTimeout(timer)
  }
}

const require = createRequire(import.meta.url)

// CommonJS, run by `new Worker(…, { eval: true })`, so it needs no build step of its own.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const Database = require(workerData.driver)
const db = new Database(workerData.path, { timeout: 1000 })
const checkpoint = (mode) => {
  try {
    return db.pragma('wal_checkpoint(' + mode + ')')[0]
  } catch {
    // Busy or locked: the next tick tries again.
    return undefined
  }
}
const { statSync } = require('node:fs')
const walFile = workerData.path + '-wal'
const walState = () => {
  try {
    const s = statSync(walFile)
    return { size: s.size, mtimeMs: s.mtimeMs }
  } catch {
    return { size: 0, mtimeMs: 0 }
  }
}
let last = ''
let quiet = 0
const tick = () => {
  const r = checkpoint('PASSIVE')
  const wal = walState()
  // Quiet: everything copied back, and neither the log nor its file changed since the last tick.
  const now = r ? r.log + ' ' + wal.size + ' ' + wal.mtimeMs : ''
  quiet = r && r.checkpointed === r.log && now === last ? quiet + 1 : 0
  last = now
  if (quiet >= workerData.quietTicks && wal.size > workerData.truncateAboveBytes) {
    checkpoint('TRUNCATE')
    quiet = 0
  }
}
const timer = setInterval(tick, workerData.intervalMs)
parentPort.on('message', (m) => {
  if (m !== 'stop') return
  clearInterval(timer)
  checkpoint('TRUNCATE')
  db.close()
  process.exit(0)
})
`

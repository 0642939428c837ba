import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'

/**
 * Moves SQLite's WAL checkpoints off the event loop. With `synchronous = NORMAL` a commit only
 * appends to the WAL; the fsyncs happen when the WAL is copied back into the database file. SQLite
 * does that copy inside whichever commit crosses the size threshold, which on a slow disk stalls
 * every request behind it for tens of milliseconds. Instead the serving connection turns automatic
 * checkpoints off and this worker thread, with a connection of its own, checkpoints on a timer
 * (PASSIVE: it never waits for, nor blocks, the writer). Once everything is copied back, the next
 * commit starts the log over from the top, and the serving connection's `journal_size_limit` then
 * cuts a log a bulk write left long. A TRUNCATE checkpoint would do the same sooner, but it takes
 * the writer lock and a commit racing it can be refused as busy without waiting out busy_timeout
 * (seen under load), so only the last checkpoint at shutdown truncates.
 */
export class Checkpointer {
  private readonly ended: Promise<void>

  private constructor(private readonly worker: Worker) {
    this.ended = new Promise((resolve) => worker.once('exit', () => resolve()))
    // A worker that fails leaves checkpoints to the next start; it must not take the service down.
    worker.on('error', () => {})
  }

  static start(path: string, intervalMs: number): Checkpointer {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        path,
        intervalMs,
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
const timer = setInterval(() => checkpoint('PASSIVE'), workerData.intervalMs)
parentPort.on('message', (m) => {
  if (m !== 'stop') return
  clearInterval(timer)
  checkpoint('TRUNCATE')
  db.close()
  process.exit(0)
})
`

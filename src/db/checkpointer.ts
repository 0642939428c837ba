import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'

/** How often the thread copies the WAL into the database file. */
const EVERY_MS = 500

/**
 * Copies SQLite's WAL into the database file every EVERY_MS on a thread and connection of its own,
 * so the fsyncs of a checkpoint stall no commit on the event loop. PASSIVE only: it never waits
 * for, nor blocks, a reader or a writer, and never restarts the log (a writer does, once every
 * frame is copied).
 */
export function startCheckpointer(path: string, synchronous: string): Worker {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3')
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { path, synchronous, driver, everyMs: EVERY_MS },
  })
  worker.unref()
  return worker
}

/**
 * Before 3.51.3 a checkpoint racing another connection's log restart can lose committed pages
 * (sqlite.org/wal.html#walresetbug): no checkpointer beside the writers there.
 */
export function hasWalResetFix(version: string): boolean {
  const [major = 0, minor = 0, patch = 0] = version.split('.').map(Number)
  return major * 1e6 + minor * 1e3 + patch >= 3_051_003
}

// CommonJS, run by `new Worker(…, { eval: true })`: no build step of its own. A checkpoint that
// finds the lock taken (another process's, or SQLite's own fallback) waits for the next turn; any
// other error ends the thread (its 'error' event), and SQLite's own checkpoints go on alone.
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads')
// better-sqlite3's own error class reaches the parent without its message: send a plain Error.
const plain = (err) => Object.assign(new Error(String(err && err.message)), { code: err && err.code })
let db
try {
  db = new (require(workerData.driver))(workerData.path, { timeout: 0, fileMustExist: true })
  db.pragma('synchronous = ' + workerData.synchronous)
} catch (err) {
  throw plain(err)
}
const timer = setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)')
  } catch (err) {
    if (err.code === 'SQLITE_BUSY' || err.code === 'SQLITE_LOCKED') return
    clearInterval(timer)
    throw plain(err)
  }
}, workerData.everyMs)
`

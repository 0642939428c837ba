import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'

/**
 * Files Gatehouse keeps (the SQLite database, the key files) hold rosters, issued ids and keys: they
 * are its own, so it makes them readable by its own user only.
 */

const OWNER_ONLY_DIR = 0o700
const OWNER_ONLY_FILE = 0o600
const OWNER_BITS = 0o700

/**
 * Creates `path` and any missing parents, each 0700, one level at a time. An existing directory
 * keeps the mode its operator gave it. Not `mkdirSync(…, { recursive: true })`: on Linux that loops
 * for ever under /proc (GATEHOUSE_DATA_DIR=/proc/nope spun at 100 % CPU); this fails with the
 * error of the level that cannot be made, which names it.
 */
export function ensurePrivateDir(path: string): void {
  const missing: string[] = []
  for (let p = resolve(path); !existsSync(p); p = dirname(p)) {
    missing.unshift(p)
    if (dirname(p) === p) break
  }
  for (const dir of missing) {
    try {
      mkdirSync(dir, { mode: OWNER_ONLY_DIR })
    } catch (err) {
      // Another process made it a moment ago: fine.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
  }
}

/** Creates `path` empty with mode 0600 if it does not exist, and narrows it to 0600 if it does. */
export function ensurePrivateFile(path: string): void {
  // 'a': create if absent, never truncate; the mode applies only when it creates.
  closeSync(openSync(path, 'a', OWNER_ONLY_FILE))
  narrowToOwner(path)
}

/**
 * Takes group and other permissions off an existing file (one written by an older Gatehouse, or
 * through a wider umask). Absent: nothing. A file of another user's (EPERM) is left as it is: the
 * operator chose to share it.
 */
export function narrowToOwner(path: string): void {
  let mode: number
  try {
    mode = statSync(path).mode
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw err
  }
  if ((mode & 0o077) === 0) return
  try {
    chmodSync(path, mode & OWNER_BITS)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err
  }
}

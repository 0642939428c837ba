import { randomBytes } from 'node:crypto'
import {
  chmodSync,
  closeSync,
  existsSync,
  linkSync,
  mkdirSync,
  openSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs'
import { dirname, resolve } from 'node:path'

/** Gatehouse's files (database, keys) hold rosters and keys: readable by its own user only. */

const OWNER_ONLY_DIR = 0o700
const OWNER_ONLY_FILE = 0o600
const OWNER_BITS = 0o700

/** mkdir 0700 level by level: `recursive: true` loops for ever under /proc on Linux. */
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

/**
 * Creates `path` (0600) holding `content`, whole the moment it appears: written beside it, then
 * hard-linked into place. False when another process created it first (two first starts at once):
 * read theirs. Never overwrites.
 */
export function createPrivateFileOnce(path: string, content: string): boolean {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  writeFileSync(tmp, content, { mode: OWNER_ONLY_FILE, flag: 'wx' })
  try {
    chmodSync(tmp, OWNER_ONLY_FILE)
    linkSync(tmp, path)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw err
  } finally {
    unlinkSync(tmp)
  }
}

/** Creates `path` empty with mode 0600 if it does not exist, and narrows it to 0600 if it does. */
export function ensurePrivateFile(path: string): void {
  // 'a': create if absent, never truncate; the mode applies only when it creates.
  closeSync(openSync(path, 'a', OWNER_ONLY_FILE))
  narrowToOwner(path)
}

/** Drops group/other permissions; another user's file (EPERM) stays as the operator chose. */
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

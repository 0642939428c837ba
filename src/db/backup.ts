import { randomBytes } from 'node:crypto'
import { existsSync, linkSync, rmSync, statSync } from 'node:fs'
import { dirname, basename, join, resolve } from 'node:path'
import Database from 'better-sqlite3'
import type { Config } from '../config.js'
import { ensurePrivateFile } from '../files.js'
import { sqliteFile } from './locate.js'

/** Why a backup was not made: one line for the operator. */
export class BackupError extends Error {
  override name = 'BackupError'
}

/**
 * A consistent online copy of the SQLite database at `out`, taken with SQLite's backup API while
 * Gatehouse keeps serving: the whole copy is one step under one read transaction, so it is the
 * database as of one commit (in WAL mode writers go on meanwhile). It is written beside `out`
 * (mode 0600), checked with `PRAGMA quick_check`, and only then linked to `out`, which must not
 * exist yet; an interrupted backup leaves no `out`. Keys in it stay sealed under the KEK, which is
 * not in the copy: back the KEK up on its own (docs/operating.md).
 */
export async function backupSqlite(
  cfg: Config['db'],
  out: string,
): Promise<{ out: string; bytes: number; pages: number }> {
  if (cfg.kind !== 'sqlite')
    throw new BackupError(
      'gatehouse backup copies an SQLite database; back PostgreSQL up with pg_dump (docs/operating.md#backups)',
    )
  const target = resolve(out)
  if (existsSync(target)) throw new BackupError(`${out} exists; name a new file`)
  if (!existsSync(dirname(target))) throw new BackupError(`no directory ${dirname(target)}`)
  const source = sqliteFile(cfg.url)
  if (source === target) throw new BackupError('--out names the database itself')
  if (!existsSync(source)) throw new BackupError(`no database at ${source}`)
  const partial = join(dirname(target), `.${basename(target)}.${randomBytes(6).toString('hex')}`)
  ensurePrivateFile(partial)
  const db = new Database(source, {
    readonly: true,
    fileMustExist: true,
    timeout: cfg.busyTimeoutMs,
  })
  try {
    // First step: every page at once, so the copy never restarts on a concurrent write.
    const { totalPages } = await db.backup(partial, { progress: () => 0x7fffffff })
    const copy = new Database(partial, { fileMustExist: true })
    try {
      const check = copy.pragma('quick_check', { simple: true })
      if (check !== 'ok') throw new BackupError(`the copy failed its check: ${String(check)}`)
    } finally {
      copy.close()
    }
    // A hard link fails if `out` appeared meanwhile, where a rename would replace it.
    linkSync(partial, target)
    return { out: target, bytes: statSync(target).size, pages: totalPages }
  } finally {
    db.close()
    for (const file of [partial, `${partial}-wal`, `${partial}-shm`]) rmSync(file, { force: true })
  }
}

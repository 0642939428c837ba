import { dirname, isAbsolute, resolve } from 'node:path'
import { ensurePrivateDir, ensurePrivateFile, narrowToOwner } from '../files.js'

export { PACKAGE_ROOT } from '../paths.js'

/** Files SQLite keeps beside a database in WAL mode (and in rollback mode, the journal). */
const SQLITE_SIDE_FILES = ['-wal', '-shm', '-journal']

/**
 * A `file:` URL's path, made absolute, with its folder created (0700) and the database file itself
 * created or narrowed to 0600 before SQLite opens it: SQLite gives the -wal and -shm files it makes
 * later the database file's own mode, so they are private too. Side files left wider by an older
 * version are narrowed here as well.
 */
export function sqlitePath(url: string): string {
  const raw = url.replace(/^file:/, '')
  const path = isAbsolute(raw) ? raw : resolve(raw)
  ensurePrivateDir(dirname(path))
  ensurePrivateFile(path)
  for (const suffix of SQLITE_SIDE_FILES) narrowToOwner(`${path}${suffix}`)
  return path
}

export interface PgTarget {
  connectionString: string
  /** The schema to work in (`?schema=` in the URL); default public. */
  schema: string
}

/**
 * Splits Prisma's `?schema=` convention off a PostgreSQL URL: node-postgres does not know it, so the
 * schema becomes the connection's search_path instead.
 */
export function pgTarget(url: string): PgTarget {
  const u = new URL(url)
  const schema = u.searchParams.get('schema') ?? 'public'
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new Error('GATEHOUSE_DATABASE_URL: ?schema= must be a lowercase SQL identifier')
  }
  u.searchParams.delete('schema')
  return { connectionString: u.toString(), schema }
}

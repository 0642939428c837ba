import { dirname, isAbsolute, resolve } from 'node:path'
import { ensurePrivateDir, ensurePrivateFile, narrowToOwner } from '../files.js'

export { PACKAGE_ROOT } from '../paths.js'

/** A `file:` URL's absolute path, as it is. */
export function sqliteFile(url: string): string {
  const raw = url.replace(/^file:/, '')
  return isAbsolute(raw) ? raw : resolve(raw)
}

/** A `file:` URL's absolute path; folder 0700, file and side files 0600 before SQLite opens it. */
export function sqlitePath(url: string): string {
  const path = sqliteFile(url)
  ensurePrivateDir(dirname(path))
  ensurePrivateFile(path)
  for (const suffix of ['-wal', '-shm', '-journal']) narrowToOwner(`${path}${suffix}`)
  return path
}

/** Splits Prisma's `?schema=` (default public) off a URL: node-postgres uses search_path instead. */
export function pgTarget(url: string): { connectionString: string; schema: string } {
  const u = new URL(url)
  const schema = u.searchParams.get('schema') ?? 'public'
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new Error('GATEHOUSE_DATABASE_URL: ?schema= must be a lowercase SQL identifier')
  }
  u.searchParams.delete('schema')
  return { connectionString: u.toString(), schema }
}

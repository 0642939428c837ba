import { existsSync, mkdirSync } from 'node:fs'
import { dirname, isAbsolute, resolve } from 'node:path'

export { PACKAGE_ROOT } from '../paths.js'

/** A `file:` URL's path, made absolute and with its folder created. */
export function sqlitePath(url: string): string {
  const raw = url.replace(/^file:/, '')
  const path = isAbsolute(raw) ? raw : resolve(raw)
  if (!existsSync(dirname(path))) mkdirSync(dirname(path), { recursive: true })
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

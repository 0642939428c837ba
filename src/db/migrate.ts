import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import pg from 'pg'
import type { DatabaseKind } from '../config.js'
import { PACKAGE_ROOT, pgTarget, sqlitePath } from './locate.js'

// Migrations run at every start, each recorded with a checksum. Several processes may start at once:
// SQLite's IMMEDIATE transaction or PostgreSQL's advisory lock lets one migrate while the others
// wait; all pending migrations apply in one transaction, so a failure leaves the schema as it was.

export interface Migration {
  name: string
  sql: string
  checksum: string
}

export class MigrationError extends Error {
  override name = 'MigrationError'
}

const PG_LOCK_ID = 0x6761_7465 // "gate"
const PG_CONNECT_TIMEOUT_MS = 10_000

export function readMigrations(kind: DatabaseKind): Migration[] {
  const dir = join(PACKAGE_ROOT, 'prisma/migrations', kind === 'sqlite' ? 'sqlite' : 'postgresql')
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && /^\d{4}_[a-z0-9_]+$/.test(d.name))
    .map((d) => d.name)
    .sort()
    .map((name) => {
      const sql = readFileSync(join(dir, name, 'migration.sql'), 'utf8')
      return { name, sql, checksum: createHash('sha256').update(sql).digest('hex') }
    })
}

type Applied = Pick<Migration, 'name' | 'checksum'>

/** Which of `all` still need to run, given what the database records. Refuses edited or unknown history. */
export function pendingMigrations(all: Migration[], applied: Applied[]): Migration[] {
  const known = new Map(all.map((m) => [m.name, m]))
  for (const row of applied) {
    const m = known.get(row.name)
    if (!m) {
      throw new MigrationError(
        `database has migration ${row.name}, which this Gatehouse does not know: it is newer than this release`,
      )
    }
    if (m.checksum !== row.checksum) {
      throw new MigrationError(`migration ${row.name} was changed after it was applied`)
    }
  }
  const done = new Set(applied.map((r) => r.name))
  return all.filter((m) => !done.has(m.name))
}

const TRACKING_TABLE = `CREATE TABLE IF NOT EXISTS gatehouse_migration (
  name TEXT PRIMARY KEY,
  checksum TEXT NOT NULL,
  applied_at TEXT NOT NULL
)`

export async function migrate(kind: DatabaseKind, url: string): Promise<string[]> {
  const all = readMigrations(kind)
  return kind === 'sqlite' ? migrateSqlite(url, all) : migratePostgres(url, all)
}

function migrateSqlite(url: string, all: Migration[]): string[] {
  const db = new Database(sqlitePath(url))
  try {
    db.pragma('journal_mode = WAL')
    db.pragma('busy_timeout = 30000')
    db.exec(TRACKING_TABLE)
    const run = db.transaction(() => {
      const applied = db.prepare('SELECT name, checksum FROM gatehouse_migration').all()
      const pending = pendingMigrations(all, applied as Applied[])
      const record = db.prepare(
        'INSERT INTO gatehouse_migration (name, checksum, applied_at) VALUES (?, ?, ?)',
      )
      for (const m of pending) {
        db.exec(m.sql)
        record.run(m.name, m.checksum, new Date().toISOString())
      }
      return pending.map((m) => m.name)
    })
    return run.immediate()
  } finally {
    db.close()
  }
}

async function migratePostgres(url: string, all: Migration[]): Promise<string[]> {
  const { connectionString, schema } = pgTarget(url)
  // An address that drops packets would otherwise hold the start for minutes of TCP retries.
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: PG_CONNECT_TIMEOUT_MS })
  await client.connect()
  try {
    // The lock comes first: CREATE SCHEMA IF NOT EXISTS is not safe against a concurrent twin.
    await client.query('SELECT pg_advisory_lock($1)', [PG_LOCK_ID])
    try {
      await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`)
      await client.query(`SET search_path TO "${schema}"`)
      await client.query('BEGIN')
      try {
        await client.query(TRACKING_TABLE)
        const { rows } = await client.query<Applied>(
          'SELECT name, checksum FROM gatehouse_migration',
        )
        const pending = pendingMigrations(all, rows)
        for (const m of pending) {
          await client.query(m.sql)
          await client.query(
            'INSERT INTO gatehouse_migration (name, checksum, applied_at) VALUES ($1, $2, $3)',
            [m.name, m.checksum, new Date().toISOString()],
          )
        }
        await client.query('COMMIT')
        return pending.map((m) => m.name)
      } catch (err) {
        await client.query('ROLLBACK')
        throw err
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [PG_LOCK_ID])
    }
  } finally {
    await client.end()
  }
}

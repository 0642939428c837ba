import type BetterSqlite3 from 'better-sqlite3'
import type { PrismaClient } from '../../generated/prisma-sqlite/index.js'
import type { SerialConnection } from './sqlite-serial.js'

export type SqlValue = string | number | boolean | Date | Uint8Array | null

/**
 * Single statements for the paths every credential exchange takes (consume a nonce, check a
 * membership, record an issued credential), outside Prisma's query compiler, which costs more than
 * the statement itself. SQL is written with `?` placeholders; it must come from our own code. Values
 * go in the way Prisma stores them, so rows written here read back through the model API unchanged.
 * Not for use inside a transaction: these run on their own.
 */
export interface HotQueries {
  /** Runs a write; resolves with the number of rows it changed. */
  execute(sql: string, args: SqlValue[]): Promise<number>
  /** Runs a read; integers come back as numbers and booleans as the database stores them. */
  query<T>(sql: string, args: SqlValue[]): Promise<T[]>
}

export interface HotSql extends HotQueries {
  /**
   * Runs `fn`'s statements as one transaction (SQLite: BEGIN IMMEDIATE, so a read-then-write cannot
   * race another process). `fn` must only await its own statements: on SQLite the connection is held
   * for the whole of it.
   */
  transaction<T>(fn: (q: HotQueries) => Promise<T>): Promise<T>
}

/** SQLite: prepared once, run on the adapter's own connection under its gate. */
export class SqliteHotSql implements HotSql {
  private readonly statements = new Map<string, BetterSqlite3.Statement>()

  constructor(private readonly connection: SerialConnection) {}

  private readonly direct: HotQueries = {
    execute: async (sql, args) => this.prepared(sql).run(...args.map(sqliteValue)).changes,
    query: async <T>(sql: string, args: SqlValue[]) =>
      this.prepared(sql).all(...args.map(sqliteValue)) as T[],
  }

  execute(sql: string, args: SqlValue[]): Promise<number> {
    return retryBusy(() => this.connection.exclusive(() => this.direct.execute(sql, args)))
  }

  query<T>(sql: string, args: SqlValue[]): Promise<T[]> {
    return retryBusy(() => this.connection.exclusive(() => this.direct.query<T>(sql, args)))
  }

  transaction<T>(fn: (q: HotQueries) => Promise<T>): Promise<T> {
    // Busy can only refuse the BEGIN (after it the write lock is held), so a retry reruns nothing.
    return retryBusy(() => this.transactionOnce(fn))
  }

  private transactionOnce<T>(fn: (q: HotQueries) => Promise<T>): Promise<T> {
    return this.connection.exclusive(async () => {
      this.prepared('BEGIN IMMEDIATE').run()
      try {
        const result = await fn(this.direct)
        this.prepared('COMMIT').run()
        return result
      } catch (err) {
        if (this.connection.client.inTransaction) this.prepared('ROLLBACK').run()
        throw err
      }
    })
  }

  private prepared(sql: string): BetterSqlite3.Statement {
    let stmt = this.statements.get(sql)
    if (!stmt) {
      stmt = this.connection.client.prepare(sql)
      if (stmt.reader) stmt.safeIntegers(false)
      this.statements.set(sql, stmt)
    }
    return stmt
  }
}

/** Waits before each retry of a statement SQLite refused as busy (about 90 ms in all). */
const BUSY_RETRY_MS = [2, 5, 10, 25, 50]

/**
 * SQLite can refuse a statement as busy without waiting out busy_timeout (a commit racing the
 * checkpointer's TRUNCATE). A refused autocommit statement changed nothing, so it is tried again
 * after a short pause, with the connection free for others meanwhile.
 */
async function retryBusy<T>(run: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await run()
    } catch (err) {
      const code = (err as { code?: unknown } | null)?.code
      const busy = typeof code === 'string' && code.startsWith('SQLITE_BUSY')
      if (!busy || attempt >= BUSY_RETRY_MS.length) throw err
      await new Promise((r) => setTimeout(r, BUSY_RETRY_MS[attempt]))
    }
  }
}

/** Prisma's SQLite adapter writes DateTime as ISO 8601 with an explicit offset, booleans as 0/1. */
function sqliteValue(v: SqlValue): string | number | Buffer | null {
  if (v instanceof Date) return v.toISOString().replace('Z', '+00:00')
  if (typeof v === 'boolean') return v ? 1 : 0
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength)
  return v
}

/** PostgreSQL: Prisma's raw API, with `?` turned into `$n` once per statement. */
export class PrismaHotSql implements HotSql {
  private readonly numbered = new Map<string, string>()

  constructor(private readonly prisma: PrismaClient) {}

  execute(sql: string, args: SqlValue[]): Promise<number> {
    return this.prisma.$executeRawUnsafe(this.placeholders(sql), ...args)
  }

  query<T>(sql: string, args: SqlValue[]): Promise<T[]> {
    return this.prisma.$queryRawUnsafe<T[]>(this.placeholders(sql), ...args)
  }

  transaction<T>(fn: (q: HotQueries) => Promise<T>): Promise<T> {
    return this.prisma.$transaction((tx) =>
      fn({
        execute: (sql, args) => tx.$executeRawUnsafe(this.placeholders(sql), ...args),
        query: <R>(sql: string, args: SqlValue[]) =>
          tx.$queryRawUnsafe<R[]>(this.placeholders(sql), ...args),
      }),
    )
  }

  private placeholders(sql: string): string {
    let out = this.numbered.get(sql)
    if (out === undefined) {
      let n = 0
      out = sql.replace(/\?/g, () => `$${++n}`)
      this.numbered.set(sql, out)
    }
    return out
  }
}

/** Rows per multi-row statement: well under every driver's parameter limit. */
const CHUNK = 500

/**
 * Multi-row INSERTs, CHUNK rows each (bulk paths, where one statement per row would dominate).
 * `table` and `columns` must be identifiers from our own code, never input.
 */
export async function insertRows(
  q: HotQueries,
  table: string,
  columns: string[],
  rows: SqlValue[][],
): Promise<void> {
  const cols = columns.map((c) => `"${c}"`).join(', ')
  const tuple = `(${columns.map(() => '?').join(', ')})`
  for (let i = 0; i < rows.length; i += CHUNK) {
    const chunk = rows.slice(i, i + CHUNK)
    await q.execute(
      `INSERT INTO "${table}" (${cols}) VALUES ${chunk.map(() => tuple).join(', ')}`,
      chunk.flat(),
    )
  }
}

/**
 * Runs `sql` once per CHUNK of `values`, with `(?, ?, …)` for that chunk substituted for `IN (*)`,
 * `before` bound ahead of the chunk. Returns every row read (writes return none).
 */
export async function forEachChunk<T>(
  q: HotQueries,
  sql: string,
  before: SqlValue[],
  values: SqlValue[],
  mode: 'query' | 'execute',
): Promise<T[]> {
  const out: T[] = []
  for (let i = 0; i < values.length; i += CHUNK) {
    const chunk = values.slice(i, i + CHUNK)
    const text = sql.replace('IN (*)', `IN (${chunk.map(() => '?').join(', ')})`)
    if (mode === 'query') out.push(...(await q.query<T>(text, [...before, ...chunk])))
    else await q.execute(text, [...before, ...chunk])
  }
  return out
}

/** A boolean column as either database returns it (SQLite: 0/1; PostgreSQL: boolean). */
export function sqlBool(v: unknown): boolean {
  return v === true || v === 1 || v === 1n
}

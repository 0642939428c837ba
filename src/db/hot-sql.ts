import type BetterSqlite3 from 'better-sqlite3'
import type { PrismaClient } from '../../generated/prisma-sqlite/index.js'
import type { Gate } from './sqlite-serial.js'

export type SqlValue = string | number | boolean | Date | Uint8Array | null

/**
 * Hot-path statements outside Prisma's query compiler (bench/RESULTS.md): `?` SQL from our own code,
 * values stored and typed as Prisma does (test/db/column-types.test.ts); never in a Prisma transaction.
 */
export interface HotQueries {
  /** Runs a write; resolves with the number of rows it changed. */
  execute(sql: string, args: SqlValue[]): Promise<number>
  query<T>(sql: string, args: SqlValue[]): Promise<T[]>
}

export interface HotSql extends HotQueries {
  /** One transaction (SQLite: BEGIN IMMEDIATE under the gate; `fn` awaits only its statements). */
  transaction<T>(fn: (q: HotQueries) => Promise<T>): Promise<T>
  close(): void
}

/** SQLite: prepared statements on their own connection, under the gate Prisma's connection uses. */
export class SqliteHotSql implements HotSql {
  private readonly statements = new Map<string, Prepared>()

  constructor(
    private readonly db: BetterSqlite3.Database,
    private readonly gate: Gate,
  ) {}

  private readonly direct: HotQueries = {
    execute: async (sql, args) => this.prepared(sql).stmt.run(...args.map(encode)).changes,
    query: async <T>(sql: string, args: SqlValue[]) => {
      const { stmt, decode } = this.prepared(sql)
      return (stmt.all(...args.map(encode)) as Record<string, unknown>[]).map(decode) as T[]
    },
  }

  execute(sql: string, args: SqlValue[]): Promise<number> {
    return this.gate.run(() => this.direct.execute(sql, args))
  }

  query<T>(sql: string, args: SqlValue[]): Promise<T[]> {
    return this.gate.run(() => this.direct.query<T>(sql, args))
  }

  transaction<T>(fn: (q: HotQueries) => Promise<T>): Promise<T> {
    return this.gate.run(async () => {
      this.prepared('BEGIN IMMEDIATE').stmt.run()
      try {
        const result = await fn(this.direct)
        this.prepared('COMMIT').stmt.run()
        return result
      } catch (err) {
        if (this.db.inTransaction) this.prepared('ROLLBACK').stmt.run()
        throw err
      }
    })
  }

  close(): void {
    this.db.close()
  }

  private prepared(sql: string): Prepared {
    let p = this.statements.get(sql)
    if (!p) {
      const stmt = this.db.prepare(sql)
      p = { stmt, decode: stmt.reader ? rowDecoder(stmt.columns()) : (row) => row }
      this.statements.set(sql, p)
    }
    return p
  }
}

interface Prepared {
  stmt: BetterSqlite3.Statement
  decode(row: Record<string, unknown>): Record<string, unknown>
}

/** Prisma's SQLite encoding (ISO 8601 with offset, 0/1, BLOB); decoded by declared column type. */
function encode(v: SqlValue): string | number | Buffer | null {
  if (v instanceof Date) return v.toISOString().replace('Z', '+00:00')
  if (typeof v === 'boolean') return v ? 1 : 0
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength)
  return v
}

const DECODERS: Record<string, (v: unknown) => unknown> = {
  BOOLEAN: (v) => v === 1,
  DATETIME: (v) => new Date(v as string),
}

function rowDecoder(columns: BetterSqlite3.ColumnDefinition[]) {
  const decoded = columns.flatMap((c) => {
    const fn = c.type && DECODERS[c.type.toUpperCase()]
    return fn ? [{ name: c.name, fn }] : []
  })
  return (row: Record<string, unknown>) => {
    for (const { name, fn } of decoded) if (row[name] !== null) row[name] = fn(row[name])
    return row
  }
}

/** PostgreSQL: Prisma's raw API (which types the rows), with `?` turned into `$n` once per statement. */
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

  close(): void {}

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

/** Multi-row INSERTs, CHUNK rows each; `table` and `columns` are our own identifiers, never input. */
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

/** Runs `sql` per CHUNK of `values`, substituted for `IN (*)` after `before`; returns rows read. */
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

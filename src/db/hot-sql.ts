import type BetterSqlite3 from 'better-sqlite3'
import type { PrismaClient } from '../../generated/prisma-sqlite/index.js'
import type { Gate } from './sqlite-serial.js'

export type SqlValue = string | number | boolean | Date | Uint8Array | null

/**
 * The tables on the hot paths (HOT_TABLES) are reached only through SQL: `?` statements from our own
 * code, values stored and typed as Prisma stores them (test/db/column-types.test.ts). The same
 * statement runs on `db.hot` outside a transaction, or on `db.in(tx)` inside a Prisma transaction
 * that also writes other tables. Integer aggregates (COUNT, SUM) may come back as bigint.
 */
export interface HotQueries {
  /** Runs a write; resolves with the number of rows it changed. */
  execute(sql: string, args: SqlValue[]): Promise<number>
  query<T>(sql: string, args: SqlValue[]): Promise<T[]>
}

/** Tables never reached through Prisma's model API (test/db/one-path.test.ts checks `src/`). */
export const HOT_TABLES = [
  'space_member',
  'member_op',
  'member_state',
  'space_writer',
  'space_event',
  'issued_credential',
  'authority_manager',
  'replay_nonce',
  'audit_entry',
  'audit_head',
  'lease',
] as const

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

/** The subset of a Prisma client (or transaction) that runs raw statements. */
interface RawRunner {
  $executeRawUnsafe(sql: string, ...args: unknown[]): Promise<number>
  $queryRawUnsafe<T>(sql: string, ...args: unknown[]): Promise<T>
}

/**
 * Statements through Prisma's raw API (which types the rows by column, as the SQLite codec above
 * does); on PostgreSQL `?` becomes `$n`, once per statement text.
 */
export function rawQueries(
  runner: RawRunner,
  numbered: Map<string, string> | undefined,
): HotQueries {
  const text = (sql: string) => (numbered ? placeholders(numbered, sql) : sql)
  return {
    execute: (sql, args) => runner.$executeRawUnsafe(text(sql), ...args),
    query: <T>(sql: string, args: SqlValue[]) => runner.$queryRawUnsafe<T[]>(text(sql), ...args),
  }
}

function placeholders(numbered: Map<string, string>, sql: string): string {
  let out = numbered.get(sql)
  if (out === undefined) {
    let n = 0
    out = sql.replace(/\?/g, () => `$${++n}`)
    numbered.set(sql, out)
  }
  return out
}

/** PostgreSQL: Prisma's raw API on the pool, transactions as Prisma's. */
export class PrismaHotSql implements HotSql {
  private readonly direct: HotQueries

  constructor(
    private readonly prisma: PrismaClient,
    private readonly numbered: Map<string, string>,
  ) {
    this.direct = rawQueries(prisma, numbered)
  }

  execute(sql: string, args: SqlValue[]): Promise<number> {
    return this.direct.execute(sql, args)
  }

  query<T>(sql: string, args: SqlValue[]): Promise<T[]> {
    return this.direct.query<T>(sql, args)
  }

  transaction<T>(fn: (q: HotQueries) => Promise<T>): Promise<T> {
    return this.prisma.$transaction((tx) => fn(rawQueries(tx, this.numbered)))
  }

  close(): void {}
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

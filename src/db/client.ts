import { createRequire } from 'node:module'
import type { Worker } from 'node:worker_threads'
import type pg from 'pg'
import Database from 'better-sqlite3'
import { PrismaBetterSQLite3 } from '@prisma/adapter-better-sqlite3'
import type { Prisma, PrismaClient } from '../../generated/prisma-sqlite/index.js'
import type { Config } from '../config.js'
import { pgTarget, sqlitePath } from './locate.js'
import { PrismaHotSql, SqliteHotSql, rawQueries, type HotQueries, type HotSql } from './hot-sql.js'
import { Gate, serialiseSqlite } from './sqlite-serial.js'
import { mapDbError } from './errors.js'
import { endFailedCommits } from './failed-commit.js'
import { hasWalResetFix, startCheckpointer } from './checkpointer.js'

export type { PrismaClient, Prisma }
/** What services receive inside `transact`: the client's query surface, without transaction control. */
export type Tx = Prisma.TransactionClient

/** SQLite cuts a WAL file longer than this back when the log restarts after a checkpoint. */
export const WAL_SIZE_LIMIT_BYTES = 16 * 1024 * 1024
/** Pages per automatic checkpoint: smaller ones stall the commit that runs them less (bench/RESULTS.md). */
export const AUTOCHECKPOINT_PAGES = 400
/**
 * With the checkpointer thread: under steady writes its copy rarely ends between two commits, which
 * a log restart needs, so the log grows until the serving connection's own checkpoint at this many
 * pages (left with only what the thread has not copied yet) restarts it; the file may stay as long.
 */
export const BACKGROUND_AUTOCHECKPOINT_PAGES = 16_000
export const BACKGROUND_WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024

// The generated clients are CommonJS; load them with require so their named exports resolve.
const require = createRequire(import.meta.url)
const loadClient = (dir: string) =>
  (require(`../../generated/${dir}/index.js`) as { PrismaClient: new (o: object) => PrismaClient })
    .PrismaClient

/** One PrismaClient per process, SQLite or PostgreSQL by URL; both are generated from one schema. */
export class Db {
  private constructor(
    readonly kind: Config['db']['kind'],
    readonly prisma: PrismaClient,
    private readonly txTimeoutMs: number,
    hot: HotSql,
    /** PostgreSQL's `$n` texts of our `?` statements; undefined on SQLite, which takes `?`. */
    private readonly numbered?: Map<string, string>,
    /** PostgreSQL's connection pool (its use is a metric). */
    readonly pool?: pg.Pool,
    /** SQLite: the file, and a setting applied to both connections. */
    private readonly sqlite?: {
      path: string
      synchronous: string
      pragma(p: string): Promise<void>
    },
  ) {
    this.hot = {
      execute: (sql, args) => hot.execute(sql, args),
      query: (sql, args) => hot.query(sql, args),
      transaction: (fn) => this.timed('hot', () => hot.transaction(fn)),
      close: () => hot.close(),
    }
  }

  /** The hot tables' statements outside a transaction (see hot-sql.ts). */
  readonly hot: HotSql

  /** Told how long each transaction took, queueing included (the metrics' histogram). */
  onTransaction: (path: 'prisma' | 'hot', seconds: number) => void = () => {}

  private async timed<T>(path: 'prisma' | 'hot', fn: () => Promise<T>): Promise<T> {
    const start = performance.now()
    try {
      return await fn()
    } finally {
      this.onTransaction(path, (performance.now() - start) / 1000)
    }
  }

  static async open(cfg: Config['db']): Promise<Db> {
    if (cfg.kind === 'sqlite') {
      const PrismaClient = loadClient('prisma-sqlite')
      const gate = new Gate()
      const path = sqlitePath(cfg.url)
      const adapter = endFailedCommits(
        serialiseSqlite(new PrismaBetterSQLite3({ url: path, timeout: cfg.busyTimeoutMs }), gate),
      )
      const prisma = new PrismaClient({ adapter })
      const hot = new Database(path, { timeout: cfg.busyTimeoutMs })
      const synchronous = cfg.sqliteSynchronous.toUpperCase()
      const sqlite = {
        path,
        synchronous,
        async pragma(p: string) {
          await prisma.$executeRawUnsafe(`PRAGMA ${p}`)
          hot.pragma(p)
        },
      }
      // Per connection: enforce foreign keys, how hard a commit syncs, and how long a WAL file may
      // stay; WAL itself is persistent and set by the migrator. SQLite checkpoints on its own
      // (until a server moves that to a thread: checkpointInBackground).
      for (const pragma of [
        'foreign_keys = ON',
        `synchronous = ${synchronous}`,
        `journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`,
        `wal_autocheckpoint = ${AUTOCHECKPOINT_PAGES}`,
      ])
        await sqlite.pragma(pragma)
      const hotSql = new SqliteHotSql(hot, gate)
      return new Db('sqlite', prisma, 30_000, hotSql, undefined, undefined, sqlite)
    }
    const { PrismaPg } = await import('@prisma/adapter-pg')
    const { default: pg } = await import('pg')
    const PrismaClient = loadClient('prisma-pg')
    const { connectionString, schema } = pgTarget(cfg.url)
    const pool = new pg.Pool({
      connectionString,
      max: cfg.poolSize,
      options: `-c search_path="${schema}"`,
    })
    const prisma = new PrismaClient({ adapter: endFailedCommits(new PrismaPg(pool, { schema })) })
    const numbered = new Map<string, string>()
    const hot = new PrismaHotSql(prisma, numbered)
    return new Db('postgres', prisma, 15_000, hot, numbered, pool)
  }

  /**
   * Runs `fn` in one transaction; a unique violation comes out as UniqueViolationError. `timeoutMs`
   * lengthens it for the rare whole-authority transactions (`gatehouse authority export|import`).
   */
  async transact<T>(fn: (tx: Tx) => Promise<T>, opts: { timeoutMs?: number } = {}): Promise<T> {
    const timeout = opts.timeoutMs ?? this.txTimeoutMs
    try {
      return await this.timed('prisma', () =>
        this.prisma.$transaction(fn, { maxWait: this.txTimeoutMs, timeout }),
      )
    } catch (err) {
      throw mapDbError(err)
    }
  }

  /** The hot tables' statements inside a Prisma transaction that also writes other tables. */
  in(tx: Tx): HotQueries {
    return rawQueries(tx, this.numbered)
  }

  /** Serialises a space's writers (LtHash state, spaceRev) in a transaction: PostgreSQL locks its row. */
  async lockSpace(on: Tx | HotQueries, space: string): Promise<void> {
    if (this.kind !== 'postgres') return
    const q = 'query' in on ? on : this.in(on)
    await q.query('SELECT uri FROM space WHERE uri = ? FOR UPDATE', [space])
  }

  /** Readiness: a round trip to the database. Throws when it is unreachable. */
  async ping(): Promise<void> {
    await this.prisma.$queryRawUnsafe('SELECT 1')
  }

  private checkpointer?: Worker

  /**
   * SQLite, in the serving process: checkpoints move to a thread (checkpointer.ts) so that no
   * request's commit pays one, and the connections' own become the log's restart
   * (BACKGROUND_AUTOCHECKPOINT_PAGES). `onError` hears if the thread fails; SQLite's own small
   * checkpoints come back then.
   */
  async checkpointInBackground(onError: (err: Error) => void): Promise<void> {
    const sqlite = this.sqlite
    if (!sqlite || this.checkpointer) return
    const [{ version }] = await this.prisma.$queryRawUnsafe<[{ version: string }]>(
      'SELECT sqlite_version() AS version',
    )
    if (!hasWalResetFix(version)) return
    const limits = async (pages: number, bytes: number) => {
      await sqlite.pragma(`journal_size_limit = ${bytes}`)
      await sqlite.pragma(`wal_autocheckpoint = ${pages}`)
    }
    await limits(BACKGROUND_AUTOCHECKPOINT_PAGES, BACKGROUND_WAL_SIZE_LIMIT_BYTES)
    this.checkpointer = startCheckpointer(sqlite.path, sqlite.synchronous)
    this.checkpointer.on('error', (err) => {
      onError(err)
      limits(AUTOCHECKPOINT_PAGES, WAL_SIZE_LIMIT_BYTES).catch(onError)
    })
  }

  async close(): Promise<void> {
    await this.checkpointer?.terminate()
    this.hot.close()
    await this.prisma.$disconnect()
    await this.pool?.end()
  }
}

import { SYSTEM_ACTOR, type AuditLog } from '../audit/audit-log.js'
import type { Clock } from '../clock.js'
import type { Db, Tx } from '../db/client.js'
import { spaceAuthority } from '../lexicon/formats.js'

export type TallyOutcome = 'issued' | 'refused'

/** A day's counts are summarised this long after its UTC midnight: its last flush is in by then. */
const FINISHED_AFTER_MS = 60_000
/** The most days the statistics routes show (the dashboard's charts). */
export const STATS_MAX_DAYS = 90
/** How long a day's counted row stays: what the statistics show, and a day. */
export const STATS_KEEP_MS = (STATS_MAX_DAYS + 1) * 24 * 3_600_000

/** A UTC day, `YYYY-MM-DD`: the unit of the per-space counters. */
export const dayOf = (ms: number) => new Date(ms).toISOString().slice(0, 10)

/** The `n` UTC days up to and including the one of `nowMs`, oldest first. */
export function lastDays(nowMs: number, n: number): string[] {
  return Array.from({ length: n }, (_, i) => dayOf(nowMs - (n - 1 - i) * 86_400_000))
}

type Counts<F extends string> = Record<F, number>

/**
 * Counters per key (a space, or a space and a syncer) and UTC day, for work too frequent to write a
 * row each time: `bump` counts in memory, `flush` adds the counts to the table through `upsert`
 * (every FLUSH_MS, and at shutdown), so a crash loses at most that long's counts. Counts that fail
 * to land are kept for the next flush; flushes run one after another.
 */
/**
 * Rows written per transaction of a flush: a relay with a thousand syncers has a thousand keys,
 * and one transaction of them all held every write request for hundreds of ms (bench/notify.ts).
 */
const FLUSH_SLICE = 20

export class DayCounter<K extends string[], F extends string> {
  private counts = new Map<string, Counts<F>>()
  private timer: NodeJS.Timeout | undefined
  /** The latest flush: the next one waits for it. */
  private last: Promise<void> = Promise.resolve()

  constructor(
    protected readonly db: Db,
    protected readonly clock: Clock,
    private readonly fields: readonly F[],
    private readonly upsert: (tx: Tx, day: string, key: K, counts: Counts<F>) => Promise<unknown>,
  ) {}

  protected bump(key: K, field: F): void {
    const at = JSON.stringify([dayOf(this.clock.nowMs()), ...key])
    let c = this.counts.get(at)
    if (!c) this.counts.set(at, (c = this.zero()))
    c[field]++
  }

  private zero(): Counts<F> {
    return Object.fromEntries(this.fields.map((f) => [f, 0])) as Counts<F>
  }

  /** Flushes every `everyMs`; a failed flush keeps its counts for the next and is told `onError`. */
  start(everyMs: number, onError: (err: unknown) => void): void {
    this.timer = setInterval(() => void this.flush().catch(onError), everyMs)
    this.timer.unref()
  }

  async stop(): Promise<void> {
    clearInterval(this.timer)
    await this.flush()
  }

  /** Adds the counts so far to the table (one flush at a time: the timer's and stop()'s wait). */
  flush(): Promise<void> {
    const run = this.last.then(() => this.write())
    this.last = run.catch(() => {})
    return run
  }

  private async write(): Promise<void> {
    if (this.counts.size === 0) return
    const pending = [...this.counts]
    this.counts = new Map()
    for (let i = 0; i < pending.length; i += FLUSH_SLICE) {
      const slice = pending.slice(i, i + FLUSH_SLICE)
      try {
        await this.db.transact(async (tx) => {
          for (const [at, counts] of slice) {
            const [day, ...key] = JSON.parse(at) as [string, ...K]
            await this.upsert(tx, day, key as unknown as K, counts)
          }
        })
      } catch (err) {
        // What did not land is kept (added to what came meanwhile) for the next flush.
        for (const [at, c] of pending.slice(i)) {
          const now = this.counts.get(at) ?? this.zero()
          for (const f of this.fields) now[f] += c[f]
          this.counts.set(at, now)
        }
        throw err
      }
      // Requests queued for the database go between two slices, not after the whole flush.
      await new Promise((r) => setImmediate(r))
    }
  }
}

/**
 * Credentials issued and refused per space and UTC day, for the audit log's daily summary and the
 * dashboard's chart. The exchange only bumps a counter in memory (it is the hottest path). Only
 * spaces hosted here are counted: a stranger's made-up space names cost nothing.
 */
export class CredentialTally extends DayCounter<[space: string], TallyOutcome> {
  constructor(db: Db, clock: Clock) {
    super(db, clock, ['issued', 'refused'], (tx, day, [space], counts) => {
      const where = { space_day: { space, day } }
      return tx.credentialTally.upsert({
        where,
        create: { space, day, ...counts },
        update: { issued: { increment: counts.issued }, refused: { increment: counts.refused } },
      })
    })
  }

  count(space: string, outcome: TallyOutcome): void {
    this.bump([space], outcome)
  }

  /** The space's counts on each of `days` (ascending), zero where none were counted. */
  async days(space: string, days: string[]) {
    const rows = await this.db.prisma.credentialTally.findMany({
      where: { space, day: { gte: days[0], lte: days.at(-1) } },
    })
    const byDay = new Map(rows.map((r) => [r.day, r]))
    return days.map((day) => ({
      day,
      issued: byDay.get(day)?.issued ?? 0,
      refused: byDay.get(day)?.refused ?? 0,
    }))
  }

  /**
   * Appends each finished day's counts to its authority's audit log (`credentials.daily`, the day
   * as subject), once: in the transaction that marks the row summarised. Rows go STATS_KEEP_MS
   * after they were summarised. Returns the days summarised (the janitor's pass; `batch` a pass at most).
   */
  async summarise(audit: AuditLog, batch = 500): Promise<number> {
    const nowMs = this.clock.nowMs()
    const rows = await this.db.prisma.credentialTally.findMany({
      where: { summarisedAt: null, day: { lt: dayOf(nowMs - FINISHED_AFTER_MS) } },
      orderBy: { day: 'asc' },
      take: batch,
    })
    for (const { space, day, issued, refused } of rows) {
      await this.db.transact(async (tx) => {
        const { count } = await tx.credentialTally.updateMany({
          where: { space, day, summarisedAt: null },
          data: { summarisedAt: new Date(nowMs) },
        })
        if (count === 0) return // another process summarised it
        await audit.append(tx, {
          authority: spaceAuthority(space),
          actor: SYSTEM_ACTOR,
          action: 'credentials.daily',
          space,
          subject: day,
          after: { issued, refused },
        })
      })
    }
    await this.db.prisma.credentialTally.deleteMany({
      where: { summarisedAt: { lt: new Date(nowMs - STATS_KEEP_MS) } },
    })
    return rows.length
  }
}

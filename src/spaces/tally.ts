import { SYSTEM_ACTOR, type AuditLog } from '../audit/audit-log.js'
import type { Clock } from '../clock.js'
import type { Db } from '../db/client.js'
import { spaceAuthority } from '../lexicon/formats.js'

export type TallyOutcome = 'issued' | 'refused'

/** A day's counts are summarised this long after its UTC midnight: its last flush is in by then. */
const FINISHED_AFTER_MS = 60_000
/** How long a summarised day's row stays (its numbers live on in the audit log). */
const SUMMARISED_KEEP_MS = 7 * 24 * 3_600_000

/** A UTC day, `YYYY-MM-DD`: the unit of the per-space credential summary. */
export const dayOf = (ms: number) => new Date(ms).toISOString().slice(0, 10)

/**
 * Credentials issued and refused per space and UTC day, for the audit log's daily summary. The
 * exchange only bumps a counter in memory (it is the hottest path); `flush` adds the counts to
 * `credential_tally` (every FLUSH_MS, and at shutdown), so a crash loses at most that long's counts.
 * Only spaces hosted here are counted: a stranger's made-up space names cost nothing.
 */
export class CredentialTally {
  private counts = new Map<string, { issued: number; refused: number }>()
  private timer: NodeJS.Timeout | undefined
  /** The latest flush: the next one waits for it. */
  private last: Promise<void> = Promise.resolve()

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  count(space: string, outcome: TallyOutcome): void {
    const key = `${dayOf(this.clock.nowMs())} ${space}`
    let c = this.counts.get(key)
    if (!c) this.counts.set(key, (c = { issued: 0, refused: 0 }))
    c[outcome]++
  }

  start(everyMs: number): void {
    this.timer = setInterval(() => void this.flush().catch(() => {}), everyMs)
    this.timer.unref()
  }

  async stop(): Promise<void> {
    clearInterval(this.timer)
    await this.flush()
  }

  /**
   * Adds the counts so far to the table; counts that fail to land are kept for the next flush.
   * Flushes run one after another (the timer's and stop()'s never overlap).
   */
  flush(): Promise<void> {
    const run = this.last.then(() => this.write())
    this.last = run.catch(() => {})
    return run
  }

  private async write(): Promise<void> {
    if (this.counts.size === 0) return
    const pending = this.counts
    this.counts = new Map()
    try {
      await this.db.transact(async (tx) => {
        for (const [key, { issued, refused }] of pending) {
          const at = key.indexOf(' ')
          const where = { space_day: { space: key.slice(at + 1), day: key.slice(0, at) } }
          await tx.credentialTally.upsert({
            where,
            create: { ...where.space_day, issued, refused },
            update: { issued: { increment: issued }, refused: { increment: refused } },
          })
        }
      })
    } catch (err) {
      for (const [key, c] of pending) {
        const now = this.counts.get(key)
        this.counts.set(key, {
          issued: c.issued + (now?.issued ?? 0),
          refused: c.refused + (now?.refused ?? 0),
        })
      }
      throw err
    }
  }

  /**
   * Appends each finished day's counts to its authority's audit log (`credentials.daily`, the day
   * as subject), once: in the transaction that marks the row summarised. Rows summarised a week
   * ago go. Returns the days summarised (the janitor's pass; `batch` a pass at most).
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
      where: { summarisedAt: { lt: new Date(nowMs - SUMMARISED_KEEP_MS) } },
    })
    return rows.length
  }
}

import type { Clock } from '../clock.js'
import type { Db } from '../db/client.js'
import { DayCounter, STATS_KEEP_MS, dayOf } from '../spaces/tally.js'

export type DeliveryOutcome = 'delivered' | 'failed'

/** The syncers a deliveries chart shows by name: the busiest of its days. */
export const SYNCERS_SHOWN = 50

/**
 * Write notifications delivered to each syncer per space and UTC day, and attempts that failed
 * (each refused or unreachable try, retried or dead-lettered), for the dashboard's chart. The relay
 * counts in memory; rows reach `delivery_tally` like the credential tally's.
 */
export class DeliveryTally extends DayCounter<[space: string, service: string], DeliveryOutcome> {
  constructor(db: Db, clock: Clock) {
    super(db, clock, ['delivered', 'failed'], (tx, day, [space, service], counts) => {
      const where = { space_service_day: { space, service, day } }
      return tx.deliveryTally.upsert({
        where,
        create: { space, service, day, ...counts },
        update: {
          delivered: { increment: counts.delivered },
          failed: { increment: counts.failed },
        },
      })
    })
  }

  count(space: string, service: string, outcome: DeliveryOutcome): void {
    this.bump([space, service], outcome)
  }

  /**
   * The space's totals on each of `days` (ascending, zero days included) and, per day, those of
   * the SYNCERS_SHOWN syncers with the most attempts over them (the totals count every syncer).
   */
  async days(space: string, days: string[]) {
    const inRange = { space, day: { gte: days[0]!, lte: days.at(-1)! } }
    const busiest = await this.db.prisma.deliveryTally.groupBy({
      by: ['service'],
      where: inRange,
      _sum: { delivered: true, failed: true },
    })
    const attempts = (r: (typeof busiest)[number]) => (r._sum.delivered ?? 0) + (r._sum.failed ?? 0)
    const shown = busiest
      .sort((a, b) => attempts(b) - attempts(a) || (a.service < b.service ? -1 : 1))
      .slice(0, SYNCERS_SHOWN)
      .map((r) => r.service)
      .sort()
    const [totals, rows] = await Promise.all([
      this.db.prisma.deliveryTally.groupBy({
        by: ['day'],
        where: inRange,
        _sum: { delivered: true, failed: true },
      }),
      this.db.prisma.deliveryTally.findMany({ where: { ...inRange, service: { in: shown } } }),
    ])
    const total = new Map(totals.map((r) => [r.day, r._sum]))
    const syncers = new Map<string, { service: string; delivered: number; failed: number }[]>()
    for (const { day, service, delivered, failed } of rows.sort((a, b) =>
      a.service < b.service ? -1 : 1,
    ))
      syncers.set(day, [...(syncers.get(day) ?? []), { service, delivered, failed }])
    return days.map((day) => ({
      day,
      delivered: total.get(day)?.delivered ?? 0,
      failed: total.get(day)?.failed ?? 0,
      syncers: syncers.get(day) ?? [],
    }))
  }

  /** Drops the rows of days older than the statistics show (the janitor's pass). */
  async prune(): Promise<number> {
    const { count } = await this.db.prisma.deliveryTally.deleteMany({
      where: { day: { lt: dayOf(this.clock.nowMs() - STATS_KEEP_MS) } },
    })
    return count
  }
}

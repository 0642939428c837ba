import type { Clock } from '../clock.js'
import type { Db } from '../db/client.js'
import { nextTid } from '../spaces/tid.js'
import {
  latestSpaceRev,
  recordDeletion,
  recordWrite,
  writerRev,
  writersAfter,
} from '../spaces/events.js'

/**
 * Write notifications: the writer set with its spaceRev sequencing, the event log the relay sends
 * from, and registrations. An accepted write is one transaction: a stale or duplicate rev changes
 * nothing; a newer one gets a spaceRev above the clock and every earlier one, and appends an event.
 */

export type WriteOutcome =
  { status: 'stale' } | { status: 'accepted'; spaceRev: string; prevSpaceRev: string | undefined }

/** A new registration would take the space past its cap (renewals never do). */
export class RegistrationLimitError extends Error {
  override name = 'RegistrationLimitError'
  constructor(
    readonly limit: number,
    readonly per: 'space' | 'user' = 'space',
  ) {
    super(
      per === 'space'
        ? `the space already has ${limit} live notification registrations, the most this host keeps`
        : `this user's credentials already hold ${limit} live notification registrations, the most this host keeps`,
    )
  }
}

export interface NotifyLimits {
  /** Live registrations one space may have; a renewal never counts against it. */
  registrationsPerSpace: number
  /** Live registrations made with one user's credentials, across spaces; renewals never count. */
  registrationsPerUser: number
}

export class NotifyService {
  /** Called after an event is appended, so the relay can wake at once. */
  onEvent: (space: string) => void = () => {}

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly limits: NotifyLimits = {
      registrationsPerSpace: 100,
      registrationsPerUser: 20,
    },
  ) {}

  async acceptWrite(
    space: string,
    write: { repo: string; repoRev: string; hash: Uint8Array },
  ): Promise<WriteOutcome> {
    // Every notifyWrite: one transaction of single statements, outside Prisma's query compiler.
    const outcome = await this.db.hot.transaction(async (q): Promise<WriteOutcome> => {
      await this.db.lockSpace(q, space)
      const current = await writerRev(q, space, write.repo)
      // Duplicates and stale revs are ignored; racing notifications keep the newest.
      if (current !== undefined && current >= write.repoRev) return { status: 'stale' }
      const prevSpaceRev = await latestSpaceRev(q, space)
      const now = this.clock.now()
      const spaceRev = nextTid(now.getTime(), prevSpaceRev)
      await recordWrite(q, space, write, spaceRev, prevSpaceRev, now)
      return { status: 'accepted', spaceRev, prevSpaceRev }
    })
    if (outcome.status === 'accepted') this.onEvent(space)
    return outcome
  }

  /** Writers with spaceRev after `cursor`, ascending: a repo that wrote again has moved later. */
  listWriters(space: string, limit: number, cursor?: string) {
    return writersAfter(this.db.hot, space, cursor ?? '', limit)
  }

  /**
   * Registers (or renews) `service` for `space` until `expiresAt`, starting at the space's current
   * spaceRev (history is in listRepos). A new one past a cap throws RegistrationLimitError: every
   * lane is an authority-signed POST per write. Renewals always pass; a lapsed one revived is new.
   */
  async register(
    space: string,
    service: string,
    endpoint: string,
    expiresAt: Date,
    /** The user whose credential asked (counted against the per-user cap). */
    registeredBy: string,
  ): Promise<void> {
    await this.db.transact(async (tx) => {
      // Under the space's lock, so two registrations cannot both take the last place; on
      // PostgreSQL also under the user's, since one user may register on several spaces at once.
      await this.db.lockSpace(tx, space)
      if (this.db.kind === 'postgres')
        await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${`registrations:${registeredBy}`}))`
      const now = this.clock.now()
      const existing = await tx.notifyRegistration.findUnique({
        where: { space_service: { space, service } },
        select: { expiresAt: true },
      })
      if (!existing || existing.expiresAt <= now) {
        const live = await tx.notifyRegistration.count({
          where: { space, expiresAt: { gt: now } },
        })
        if (live >= this.limits.registrationsPerSpace)
          throw new RegistrationLimitError(this.limits.registrationsPerSpace)
        const mine = await tx.notifyRegistration.count({
          where: { registeredBy, expiresAt: { gt: now } },
        })
        if (mine >= this.limits.registrationsPerUser)
          throw new RegistrationLimitError(this.limits.registrationsPerUser, 'user')
      }
      if (existing) {
        // A live registration renewed by anyone stays its registrant's; a lapsed one revived is
        // the reviver's (counted against them above) and starts afresh, like a new one: the events
        // it missed may be pruned.
        const lapsed = existing.expiresAt <= now
        const afresh = lapsed
          ? {
              registeredBy,
              cursor: (await latestSpaceRev(this.db.in(tx), space)) ?? null,
              nextAttemptAt: now,
            }
          : {}
        await tx.notifyRegistration.update({
          where: { space_service: { space, service } },
          data: { endpoint, expiresAt, ...afresh },
        })
      } else {
        const cursor = (await latestSpaceRev(this.db.in(tx), space)) ?? null
        await tx.notifyRegistration.create({
          data: {
            space,
            service,
            endpoint,
            expiresAt,
            createdAt: now,
            cursor,
            nextAttemptAt: now,
            registeredBy,
          },
        })
      }
    })
  }

  /** Appends the deletion event; registrations stay until it has been delivered to them. */
  async spaceDeleted(space: string): Promise<void> {
    await this.db.hot.transaction(async (q) => {
      await this.db.lockSpace(q, space)
      const now = this.clock.now()
      await recordDeletion(q, space, nextTid(now.getTime(), await latestSpaceRev(q, space)), now)
    })
    this.onEvent(space)
  }

  /** The space's notification registrations in service order, `limit` after `cursor` (a service). */
  registrations(space: string, limit: number, cursor?: string) {
    return this.db.prisma.notifyRegistration.findMany({
      where: { space, ...(cursor ? { service: { gt: cursor } } : {}) },
      orderBy: { service: 'asc' },
      take: limit,
    })
  }

  /** What the relay gave up on for `space`, newest first, in wire form; `cursor` is a letter's id. */
  async deadLetters(space: string, limit: number, cursor?: string) {
    const rows = await this.db.prisma.deadLetter.findMany({
      where: { space },
      orderBy: [{ createdAt: 'desc' }, { id: 'asc' }],
      take: limit,
      ...(cursor ? { cursor: { id: cursor }, skip: 1 } : {}),
    })
    return rows.map((d) => ({
      id: d.id,
      service: d.service,
      spaceRev: d.spaceRev,
      kind: d.kind,
      attempts: d.attempts,
      ...(d.lastError ? { lastError: d.lastError } : {}),
      ...(d.credentials ? { credentials: JSON.parse(d.credentials) as string[] } : {}),
      createdAt: d.createdAt.toISOString(),
    }))
  }

  async unregister(space: string, service: string): Promise<void> {
    await this.db.prisma.notifyRegistration.deleteMany({ where: { space, service } })
  }
}

import type { Clock } from './clock.js'
import type { Config } from './config.js'
import type { Db } from './db/client.js'
import type { Leases } from './db/leases.js'
import type { Logger } from './logger.js'
import { pruneCredentials } from './spaces/credentials.js'
import { oldestEvents, pruneEvents } from './spaces/events.js'

/** Rows deleted per statement: each delete is a short transaction of its own. */
const BATCH = 1000

/** How long a create's answer is kept for a repeat with its Idempotency-Key. */
export const IDEMPOTENCY_KEEP_MS = 24 * 3600_000

const LEASE = 'janitor'

/** Rows deleted by one batch, and whether there may be more. */
type Step = [deleted: number, more: boolean]

/**
 * Keeps storage bounded under steady traffic: each table on its own rule, oldest rows first, in
 * batches of about BATCH with a yield between, so no pass holds a write lock for long. `others` are
 * prunes kept by their own modules (replay nonces, the member oplog).
 */
export class Janitor {
  private timer: NodeJS.Timeout | undefined
  private pass: Promise<void> | undefined

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly leases: Leases,
    private readonly cfg: Pick<Config, 'retention' | 'notify' | 'managers'>,
    private readonly others: Record<string, () => Promise<number>> = {},
  ) {}

  /** Runs a pass every `everyMs` until stopped; a failed pass is logged, the next one retries. */
  start(everyMs: number, logger: Logger): void {
    this.timer = setInterval(() => {
      this.pass ??= this.runAlone()
        .then((pruned) => pruned && logger.debug(pruned, 'pruned expired rows'))
        .catch((err: unknown) => logger.error({ err }, 'prune failed'))
        .finally(() => (this.pass = undefined))
    }, everyMs)
    this.timer.unref()
  }

  async stop(): Promise<void> {
    clearInterval(this.timer)
    await this.pass
  }

  /**
   * A pass under the janitor's lease, so processes sharing a database take turns; undefined when
   * another process's pass holds it.
   */
  async runAlone(): Promise<Record<string, number> | undefined> {
    const { leases } = this
    if (!(await leases.claim([LEASE])).size) return undefined
    const renewal = setInterval(() => void leases.renew([LEASE]).catch(() => {}), leases.ttlMs / 3)
    try {
      return await this.run()
    } finally {
      clearInterval(renewal)
      await leases.release([LEASE])
    }
  }

  /** One pass over every table; returns how many rows each lost. */
  async run(): Promise<Record<string, number>> {
    const p = this.db.prisma
    const now = this.clock.nowMs()
    const before = (ms: number) => new Date(now - ms)
    const credentialsBefore = before(this.cfg.retention.credentialsMs)
    const deadLettersBefore = before(this.cfg.retention.deadLettersMs)
    const pruned: Record<string, number> = {
      credentials: await batches(() => pruneCredentials(this.db.hot, credentialsBefore, BATCH)),
      // A revocation matters only until the credential would have expired anyway.
      revoked: await batches(() =>
        oldest(
          p.revokedCredential.findMany({ ...older('expiresAt', new Date(now)), select: E }),
          (r) => r.expiresAt,
          (at) => p.revokedCredential.deleteMany({ where: { expiresAt: { lte: at } } }),
        ),
      ),
      deadLetters: await batches(() =>
        oldest(
          p.deadLetter.findMany({ ...older('createdAt', deadLettersBefore), select: C }),
          (r) => r.createdAt,
          (at) => p.deadLetter.deleteMany({ where: { createdAt: { lte: at } } }),
        ),
      ),
      // A lapsed registration gets nothing and only slows the relay's read of due lanes.
      registrations: await batches(() =>
        oldest(
          p.notifyRegistration.findMany({ ...older('expiresAt', new Date(now)), select: E }),
          (r) => r.expiresAt,
          (at) => p.notifyRegistration.deleteMany({ where: { expiresAt: { lte: at } } }),
        ),
      ),
      idempotentResponses: await batches(() =>
        oldest(
          p.idempotentResponse.findMany({
            ...older('createdAt', before(IDEMPOTENCY_KEEP_MS)),
            select: C,
          }),
          (r) => r.createdAt,
          (at) => p.idempotentResponse.deleteMany({ where: { createdAt: { lte: at } } }),
        ),
      ),
      // Managers' sessions past their absolute expiry, then those idle too long.
      sessions: await batches(() =>
        oldest(
          p.managerSession.findMany({ ...older('expiresAt', new Date(now)), select: E }),
          (r) => r.expiresAt,
          (at) => p.managerSession.deleteMany({ where: { expiresAt: { lte: at } } }),
        ),
      ),
      idleSessions: await batches(() =>
        oldest(
          p.managerSession.findMany({
            ...older('lastSeenAt', before(this.cfg.managers.sessionIdleMs)),
            select: { lastSeenAt: true },
          }),
          (r) => r.lastSeenAt,
          (at) => p.managerSession.deleteMany({ where: { lastSeenAt: { lte: at } } }),
        ),
      ),
      // Logins never finished, and OAuth sessions no login session can use any more.
      oauth: await batches(() =>
        oldest(
          p.oauthStore.findMany({ ...older('expiresAt', new Date(now)), select: E }),
          (r) => r.expiresAt!,
          (at) => p.oauthStore.deleteMany({ where: { expiresAt: { lte: at } } }),
        ),
      ),
      // Strangers make join requests: decided ones go once the requester had time to read them.
      joinRequests: await batches(() =>
        oldest(
          p.joinRequest.findMany({
            ...older('decidedAt', before(this.cfg.retention.joinRequestsMs)),
            select: { decidedAt: true },
          }),
          (r) => r.decidedAt!,
          (at) => p.joinRequest.deleteMany({ where: { decidedAt: { lte: at } } }),
        ),
      ),
      // A ban past its expiry no longer applies.
      bans: await batches(() =>
        oldest(
          p.ban.findMany({ ...older('expiresAt', new Date(now)), select: E }),
          (r) => r.expiresAt!,
          (at) => p.ban.deleteMany({ where: { expiresAt: { lte: at } } }),
        ),
      ),
      events: await batches(() =>
        this.pruneEvents(before(this.cfg.notify.relayRetryWindowMs), new Date(now)),
      ),
    }
    for (const [name, prune] of Object.entries(this.others)) pruned[name] = await prune()
    return pruned
  }

  /**
   * Events past the retry window that every live lane of their space has passed (the newest spaceRev
   * lives on in the writer rows). Events held by a lane behind end the pass until it moves on.
   */
  private async pruneEvents(before: Date, now: Date): Promise<Step> {
    const oldest = await oldestEvents(this.db.hot, before, BATCH)
    const upTo = new Map<string, string>()
    for (const e of oldest)
      if (e.spaceRev > (upTo.get(e.space) ?? '')) upTo.set(e.space, e.spaceRev)
    const lanes = await this.db.prisma.notifyRegistration.findMany({
      where: { space: { in: [...upTo.keys()] }, expiresAt: { gt: now } },
      select: { space: true, cursor: true },
    })
    for (const { space, cursor } of lanes)
      if ((cursor ?? '') < upTo.get(space)!) upTo.set(space, cursor ?? '')
    let deleted = 0
    for (const [space, spaceRev] of upTo)
      deleted += await pruneEvents(this.db.hot, space, spaceRev, before)
    return [deleted, oldest.length === BATCH && deleted > 0]
  }
}

/** Runs `step` while it may find more, yielding between; returns the total deleted. */
async function batches(step: () => Promise<Step>): Promise<number> {
  let total = 0
  for (;;) {
    const [n, more] = await step()
    total += n
    if (!more) return total
    await new Promise((r) => setImmediate(r))
  }
}

const E = { expiresAt: true } as const
const C = { createdAt: true } as const

/** The oldest batch of rows whose `field` is before `cutoff`. */
function older<F extends 'expiresAt' | 'createdAt' | 'lastSeenAt' | 'decidedAt'>(
  field: F,
  cutoff: Date,
) {
  return {
    where: { [field]: { lt: cutoff } } as Record<F, { lt: Date }>,
    orderBy: { [field]: 'asc' } as Record<F, 'asc'>,
    take: BATCH,
  }
}

/** Deletes the rows up to the last of a batch found (ties with it included). */
async function oldest<R>(
  found: Promise<R[]>,
  at: (row: R) => Date,
  remove: (upTo: Date) => Promise<{ count: number }>,
): Promise<Step> {
  const rows = await found
  const last = rows.at(-1)
  return last ? [(await remove(at(last))).count, rows.length === BATCH] : [0, false]
}

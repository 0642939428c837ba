import { spaceAuthority, toBytesJson } from '../lexicon/formats.js'
import { randomUUID } from 'node:crypto'
import { SYSTEM_ACTOR, type Actor, type AuditLog } from '../audit/audit-log.js'
import type { AuthorityService } from '../authorities/authority-service.js'
import type { OutboundAuth } from '../auth/outbound.js'
import type { Clock } from '../clock.js'
import type { Config } from '../config.js'
import type { Keypair } from '../crypto/keypair.js'
import type { Db } from '../db/client.js'
import type { Leases } from '../db/leases.js'
import type { DeliveryTally } from './delivery-tally.js'
import type { DidResolver } from '../identity/resolver.js'
import type { Logger } from '../logger.js'
import { FetchError, type SafeFetcher } from '../net/safe-fetch.js'
import { nextTid } from '../spaces/tid.js'
import { eventAt, eventsAfter, writerDids, type SpaceEvent } from '../spaces/events.js'

/**
 * The durable relay of write notifications to syncers, revocation notices to repo hosts and join
 * requests to managing apps, with one retry policy. A registration is a lane sending its space's events in spaceRev order from its
 * cursor, moved only after a 2xx (gap-free; a crash between sending and recording repeats up to a pass).
 * A revocation notice is a queued row, deleted once delivered. 408/425/429/5xx and network errors
 * back off; anything else, or a failure past the retry window, is dead-lettered. A breaker per
 * endpoint spares a dead host attempts. State is in the database. Spaces run side by side, each on
 * at most its share of the shared delivery slots. Processes sharing a PostgreSQL database each run a
 * relay: a space's work is done under its lease (`relay:<space>`), read again once the lease is
 * ours, the lease renewed while the work runs and checked before a cursor moves.
 */

const NOTIFY_WRITE = 'com.atproto.space.notifyWrite'
const NOTIFY_SPACE_DELETED = 'com.atproto.space.notifySpaceDeleted'
const NOTIFY_CREDENTIAL_REVOKED = 'com.atproto.space.notifyCredentialRevoked'
const NOTIFY_JOIN_REQUEST = 'dev.gatehouse.space.notifyJoinRequest'
/** The lexicon's limit on jtis per notifyCredentialRevoked call. */
const REVOCATION_BATCH = 100
const PERMANENT = (status: number) =>
  status >= 400 && status < 500 && ![408, 425, 429].includes(status)
/**
 * How a generation A repo host (the reference PDS proxies the unknown method onward) answers
 * notifyCredentialRevoked: final, not a dead letter, as it is the host's known limit.
 */
const UNSUPPORTED = new Set([400, 404, 501])
const RETRY_MAX_MS = 3_600_000
/** Failures in a row that open an endpoint's breaker. */
const BREAKER_THRESHOLD = 5
/** Events sent per lane per pass. */
const BATCH = 100
/**
 * How long a pass waits for a space's slowest lanes: past it, the lanes still sending (a syncer
 * that hangs until the timeout) go on alone and record their own cursors, so the space's other
 * lanes get its next events without waiting for them.
 */
const SLOW_LANE_MS = 1000
/** The least time between two passes of the loop when it is woken while passing. */
const PASS_GAP_MS = 10

type Breaker = { failures: number; openUntilMs: number }

const LEASE = 'relay:'
const leaseOf = (space: string) => LEASE + space

/** Delivery slots shared by every space, handed out in the order they were asked for. */
class Slots {
  private readonly waiting: (() => void)[] = []

  constructor(private free: number) {}

  async take(): Promise<void> {
    if (this.free > 0) this.free--
    else await new Promise<void>((r) => this.waiting.push(r))
  }

  give(): void {
    const next = this.waiting.shift()
    if (next) next()
    else this.free++
  }
}

type Lane = { space: string; service: string; cursor: string | null; attempts: number }

type Notice = Awaited<ReturnType<Db['prisma']['revocationNotice']['findFirstOrThrow']>>
type Forward = Awaited<ReturnType<Db['prisma']['joinRequestNotice']['findFirstOrThrow']>>

/** A space's due work in one pass. */
type SpaceWork = { lanes: Lane[]; notices: Notice[]; forwards: Forward[] }

/** Why a delivery did not happen; a permanent one is dead-lettered at once. */
type Failure = { permanent: boolean; error: string; status?: number; open?: true }

type Target = { authority: string; endpoint: string; key: Keypair }

type RelayEvent = SpaceEvent

/** A lane's pass: `failure` if it stopped on a retryable one, `deleted` if it ended the lane. */
interface LaneResult {
  lane: Lane
  sent: number
  cursor: string | null
  attempts: number
  failure?: string
  deleted: boolean
}

/** What became of one POST: the metrics' labels. */
export type DeliveryOutcome = 'delivered' | 'retry' | 'refused' | 'circuit_open'

export class Relay {
  /** Told of every POST's outcome (the metrics' counter). */
  onDelivery: (method: string, outcome: DeliveryOutcome) => void = () => {}
  private readonly breakers = new Map<string, Breaker>()
  /** The task of each space being delivered now: a space has at most one at a time. */
  private readonly inflight = new Map<string, Promise<number>>()
  /** Per space, the lanes (by service) still sending after their pass ended, and their end. */
  private readonly slow = new Map<string, Map<string, Promise<void>>>()
  /**
   * Until when (this process's clock) each in-flight space's lease is surely ours: the time its last
   * claim or renewal was sent plus the TTL, the earliest another process may take it over. Past it
   * (renewals failing, a stall) the space sends nothing more, so two processes never send at once.
   */
  private readonly leaseUntil = new Map<string, number>()
  private readonly slots: Slots
  /** Serialised bodies of the events of the current passes (dropped with the event objects). */
  private readonly bodies = new WeakMap<RelayEvent, string>()
  private running: Promise<void> | undefined
  private heartbeat: NodeJS.Timeout | undefined
  private stopped = false
  private wakeRequested = false

  constructor(
    private readonly deps: {
      db: Db
      leases: Leases
      deliveries: DeliveryTally
      audit: AuditLog
      resolver: DidResolver
      fetcher: SafeFetcher
      authorities: AuthorityService
      outbound: OutboundAuth
      clock: Clock
      logger: Logger
    },
    /** GATEHOUSE_RELAY_* */
    private readonly opts: Config['notify'],
  ) {
    this.slots = new Slots(opts.relayConcurrency)
  }

  /** Starts the background loop (bin.ts does; tests drive `runOnce` themselves or start it). */
  start(pollMs = 1000): void {
    if (this.running) return
    const { leases, logger } = this.deps
    if (leases.shared) {
      // Keeps the leases of the spaces in flight; a lost one stops its space's sends and cursors.
      this.heartbeat = setInterval(() => {
        const held = this.busySpaces().map(leaseOf)
        const at = this.deps.clock.nowMs()
        leases.renew(held).then(
          (ours) => {
            for (const name of ours) this.heldFrom(name.slice(LEASE.length), at)
            const lost = held.filter((name) => !ours.has(name))
            for (const name of lost) this.leaseUntil.delete(name.slice(LEASE.length))
            if (lost.length) logger.warn({ lost }, 'relay leases lost to another process')
          },
          (err: unknown) => logger.warn({ err }, 'relay lease renewal failed'),
        )
      }, leases.ttlMs / 3)
      this.heartbeat.unref()
    }
    // A pass starts the due spaces not already in flight without waiting for them; a task that
    // delivered something wakes the loop when it ends (it may have more), and so do new events.
    this.running = (async () => {
      while (!this.stopped) {
        this.wakeRequested = false
        await this.dispatch().catch((err: unknown) => {
          this.deps.logger.error({ err }, 'relay pass failed')
        })
        if (this.stopped) continue
        // Woken meanwhile (a write per notifyWrite): pass again, but not back to back, so a steady
        // stream of writes costs a pass per PASS_GAP_MS rather than one per write.
        if (this.wakeRequested) {
          await new Promise((r) => setTimeout(r, PASS_GAP_MS))
          continue
        }
        await new Promise<void>((r) => {
          const timer = setTimeout(r, pollMs)
          this.wakeUp = () => {
            clearTimeout(timer)
            r()
          }
        })
        this.wakeUp = () => {}
      }
    })()
  }

  private wakeUp: () => void = () => {}

  /** New work: look again now rather than at the next poll. */
  wake(): void {
    this.wakeRequested = true
    this.wakeUp()
  }

  /**
   * A manager's retry of a dead letter of `space`, now and once: delivered, the letter goes; refused,
   * it stays with the new error. Undefined when there is no such letter; `pruned` when its event is
   * gone (the syncer catches up from listRepos).
   */
  async replay(
    space: string,
    id: string,
    by: Actor = SYSTEM_ACTOR,
  ): Promise<{ delivered: boolean; error?: string } | 'pruned' | undefined> {
    const db = this.deps.db.prisma
    const letter = await db.deadLetter.findFirst({ where: { id, space } })
    if (!letter) return undefined
    let lxm = NOTIFY_CREDENTIAL_REVOKED
    let body = JSON.stringify({ space, credentials: JSON.parse(letter.credentials ?? '[]') })
    if (letter.kind !== 'revocation') {
      const event = await eventAt(this.deps.db.hot, space, letter.spaceRev)
      if (!event) return 'pruned'
      lxm = event.kind === 'deleted' ? NOTIFY_SPACE_DELETED : NOTIFY_WRITE
      body = this.body(space, event)
    }
    const target = await this.target(space, letter.service)
    const outcome = 'error' in target ? target : await this.post(target, letter.service, lxm, body)
    if (letter.kind !== 'revocation')
      this.deps.deliveries.count(space, letter.service, outcome === 'ok' ? 'delivered' : 'failed')
    const result =
      outcome === 'ok' ? { delivered: true } : { delivered: false, error: outcome.error }
    await this.deps.db.transact(async (tx) => {
      if (outcome === 'ok') await tx.deadLetter.deleteMany({ where: { id } })
      else
        await tx.deadLetter.updateMany({
          where: { id },
          data: { attempts: letter.attempts + 1, lastError: outcome.error },
        })
      await this.deps.audit.append(tx, {
        authority: spaceAuthority(space),
        actor: by,
        action: 'dead-letter.replay',
        space,
        subject: id,
        after: { service: letter.service, ...result },
      })
    })
    return result
  }

  /** Ends the loop and waits for deliveries in flight; what is still queued stays queued. */
  async stop(): Promise<void> {
    this.stopped = true
    this.wakeUp()
    await this.running
    await Promise.allSettled(this.inflight.values())
    await Promise.allSettled(this.slowLanes())
    clearInterval(this.heartbeat)
  }

  /** One pass over what is due, waiting for every space it started. Returns how many were sent. */
  async runOnce(): Promise<number> {
    const sent = await Promise.all(await this.dispatch())
    await Promise.all(this.slowLanes())
    return sent.reduce((a, b) => a + b, 0)
  }

  /**
   * Starts (without waiting) one task per space with due work and none in flight. With other
   * processes on the database, only spaces whose lease is ours, their work read again after the
   * claim (another process may have just done it).
   */
  private async dispatch(): Promise<Promise<number>[]> {
    // A space in flight keeps its work until its task ends: it must not crowd out other spaces'.
    // Nor may the spaces another process holds (a dead one's, until they expire).
    const { leases } = this.deps
    const busy = [...this.inflight.keys()]
    for (const name of await leases.heldElsewhere(LEASE)) busy.push(name.slice(LEASE.length))
    let bySpace = await this.due(busy.length ? { space: { notIn: busy } } : {})
    const withoutSlowLanes = () => {
      for (const [space, work] of bySpace) {
        const slow = this.slow.get(space)
        if (slow) work.lanes = work.lanes.filter((lane) => !slow.has(lane.service))
      }
    }
    withoutSlowLanes()
    if (leases.shared && bySpace.size) {
      const spaces = [...bySpace.keys()].filter((space) => !this.inflight.has(space))
      const at = this.deps.clock.nowMs()
      const ours = [...(await leases.claim(spaces.map(leaseOf)))].map((n) => n.slice(LEASE.length))
      for (const space of ours)
        if (!this.inflight.has(space)) this.leaseUntil.set(space, at + leases.ttlMs)
      bySpace = ours.length ? await this.due({ space: { in: ours } }) : new Map()
      withoutSlowLanes()
      const idle = ours.filter((space) => !bySpace.has(space) && !this.busy(space))
      if (idle.length) await leases.release(idle.map(leaseOf))
    }
    const started: Promise<number>[] = []
    for (const [space, work] of bySpace) {
      // Another pass may have started the space while this one read.
      if (this.inflight.has(space)) continue
      // Released while still in flight, so no pass of ours claims it again meanwhile.
      const task = this.runSpace(space, work).finally(async () => {
        if (!this.slow.has(space)) await this.releaseSpace(space)
        this.inflight.delete(space)
      })
      this.inflight.set(space, task)
      void task.then(
        (sent) => sent > 0 && this.wake(),
        (err: unknown) => this.deps.logger.error({ err, space }, 'relay pass failed'),
      )
      started.push(task)
    }
    return started
  }

  /** The spaces this process is sending for: a pass in flight, or slow lanes still going. */
  private busySpaces(): string[] {
    return [...new Set([...this.inflight.keys(), ...this.slow.keys()])]
  }

  private slowLanes(): Promise<void>[] {
    return [...this.slow.values()].flatMap((lanes) => [...lanes.values()])
  }

  private busy(space: string): boolean {
    return this.inflight.has(space) || this.slow.has(space)
  }

  /** Gives the space's lease up: nothing of it is being sent any more. */
  private async releaseSpace(space: string): Promise<void> {
    if (this.deps.leases.shared)
      await this.deps.leases.release([leaseOf(space)]).catch((err: unknown) => {
        this.deps.logger.warn({ err, space }, 'relay lease release failed: it expires')
      })
    this.leaseUntil.delete(space)
  }

  /** Whether this process may still send for `space` (always, when it is the only one). */
  private holds(space: string): boolean {
    return !this.deps.leases.shared || (this.leaseUntil.get(space) ?? 0) > this.deps.clock.nowMs()
  }

  /** A renewal of `space`'s lease sent at `atMs` succeeded: it is ours a TTL from then. */
  private heldFrom(space: string, atMs: number): void {
    if (this.busy(space)) this.leaseUntil.set(space, atMs + this.deps.leases.ttlMs)
  }

  /** What is due now, by space. */
  private async due(where: {
    space?: { in: string[] } | { notIn: string[] }
  }): Promise<Map<string, SpaceWork>> {
    const now = this.deps.clock.now()
    const db = this.deps.db.prisma
    const take = this.opts.relayConcurrency * 32
    const [due, notices, forwards] = await Promise.all([
      db.notifyRegistration.findMany({
        where: { expiresAt: { gt: now }, nextAttemptAt: { lte: now }, ...where },
        orderBy: { nextAttemptAt: 'asc' },
        take,
        select: { space: true, service: true, cursor: true, attempts: true },
      }),
      db.revocationNotice.findMany({
        where: { nextAttemptAt: { lte: now }, ...where },
        orderBy: { nextAttemptAt: 'asc' },
        take,
      }),
      db.joinRequestNotice.findMany({
        where: { nextAttemptAt: { lte: now }, ...where },
        orderBy: { nextAttemptAt: 'asc' },
        take,
      }),
    ])
    const bySpace = new Map<string, SpaceWork>()
    const of = (space: string) =>
      bySpace.get(space) ?? bySpace.set(space, { lanes: [], notices: [], forwards: [] }).get(space)!
    for (const lane of due) of(lane.space).lanes.push(lane)
    for (const notice of notices) of(notice.space).notices.push(notice)
    for (const forward of forwards) of(forward.space).forwards.push(forward)
    return bySpace
  }

  private async runSpace(space: string, work: SpaceWork): Promise<number> {
    const sent = work.lanes.length ? await this.runLanes(space, work.lanes) : 0
    const told = await this.pool(work.notices, (n) => this.runNotice(n))
    const forwarded = await this.pool(work.forwards, (f) => this.runForward(f))
    return sent + [...told, ...forwarded].filter(Boolean).length
  }

  /** Runs `work` on the space's workers, a shared slot per item (≤ spaceConcurrency if they hang). */
  private async pool<T, R>(items: T[], work: (item: T) => Promise<R>): Promise<R[]> {
    const queue = [...items]
    const results: R[] = []
    const width = Math.min(
      this.opts.relaySpaceConcurrency,
      this.opts.relayConcurrency,
      queue.length,
    )
    const workers = Array.from({ length: width }, async () => {
      for (let item = queue.shift(); item && !this.stopped; item = queue.shift()) {
        await this.slots.take()
        try {
          results.push(await work(item))
        } finally {
          this.slots.give()
        }
      }
    })
    await Promise.all(workers)
    return results
  }

  /** A space's lanes share one read of its events and write their cursors back grouped. */
  private async runLanes(space: string, lanes: Lane[]): Promise<number> {
    const from = lanes.map((l) => l.cursor ?? '').reduce((a, b) => (a < b ? a : b))
    const events = await eventsAfter(this.deps.db.hot, space, from, BATCH)
    if (events.length === 0) return 0
    const pending = lanes.filter((l) => events.some((e) => e.spaceRev > (l.cursor ?? '')))
    const finished: LaneResult[] = []
    const all = this.pool(pending, async (lane) => {
      const result = await this.runLane(
        lane,
        events.filter((e) => e.spaceRev > (lane.cursor ?? '')),
      )
      finished.push(result)
      return result
    })
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<'late'>((r) => (timer = setTimeout(r, SLOW_LANE_MS, 'late')))
    const outcome = await Promise.race([all, late])
    clearTimeout(timer)
    const now = finished.splice(0)
    await this.record(space, now)
    if (outcome === 'late') this.goOnAlone(space, pending, now, all, finished)
    return now.reduce((n, r) => n + r.sent, 0)
  }

  /**
   * Lets the lanes of a pass that have not finished (`pending` less `done`) go on without it: kept
   * out of the space's next passes, its lease kept, until they end and record their cursors.
   */
  private goOnAlone(
    space: string,
    pending: Lane[],
    done: LaneResult[],
    all: Promise<LaneResult[]>,
    later: LaneResult[],
  ): void {
    const services = new Set(pending.map((lane) => lane.service))
    for (const r of done) services.delete(r.lane.service)
    const lanes = this.slow.get(space) ?? new Map<string, Promise<void>>()
    const end = all
      .then(() => this.record(space, later))
      .then(() => (later.some((r) => r.sent > 0) ? this.wake() : undefined))
      .catch((err: unknown) => this.deps.logger.error({ err, space }, 'relay pass failed'))
      .finally(async () => {
        // Released while still counted, so no pass of ours claims the space again meanwhile.
        const others = [...lanes.keys()].filter((service) => !services.has(service))
        if (others.length === 0 && !this.inflight.has(space)) await this.releaseSpace(space)
        for (const service of services) lanes.delete(service)
        if (lanes.size === 0 && this.slow.get(space) === lanes) this.slow.delete(space)
      })
    for (const service of services) lanes.set(service, end)
    this.slow.set(space, lanes)
  }

  /** Sends a lane's pending events in order until one fails. Writes nothing but dead letters. */
  private async runLane(lane: Lane, events: RelayEvent[]): Promise<LaneResult> {
    const result: LaneResult = {
      lane,
      sent: 0,
      cursor: lane.cursor,
      attempts: lane.attempts,
      deleted: false,
    }
    const target = await this.target(lane.space, lane.service)
    for (const event of events) {
      // The lease may have run out meanwhile: what is left is its next holder's to send.
      if (!this.holds(lane.space)) return result
      const lxm = event.kind === 'deleted' ? NOTIFY_SPACE_DELETED : NOTIFY_WRITE
      const outcome =
        'error' in target
          ? target
          : await this.post(target, lane.service, lxm, this.body(lane.space, event))
      this.deps.deliveries.count(
        lane.space,
        lane.service,
        outcome === 'ok' ? 'delivered' : 'failed',
      )
      if (outcome === 'ok') {
        result.sent++
        result.attempts = 0
        result.cursor = event.spaceRev
      } else {
        result.attempts++
        if (!outcome.permanent && !this.expired(event.createdAt)) {
          result.failure = outcome.error
          return result
        }
        await this.deps.db.prisma.deadLetter.create({
          data: {
            id: randomUUID(),
            space: lane.space,
            service: lane.service,
            spaceRev: event.spaceRev,
            kind: event.kind,
            attempts: result.attempts,
            lastError: outcome.error,
            createdAt: this.deps.clock.now(),
          },
        })
        result.attempts = 0
        result.cursor = event.spaceRev
      }
      // A delivered (or given-up) deletion ends the registration.
      if (event.kind === 'deleted') {
        result.deleted = true
        return result
      }
    }
    return result
  }

  /**
   * Writes the lanes' new cursors: one update per distinct cursor, one per failing lane. Nothing
   * when the space's lease was lost: its new holder reads the cursors as they were and sends on.
   * (Renewed here, the lease outlasts these few statements by far.)
   */
  private async record(space: string, results: LaneResult[]): Promise<void> {
    const { leases, logger } = this.deps
    const at = this.deps.clock.nowMs()
    if ((await leases.renew([leaseOf(space)])).size) this.heldFrom(space, at)
    else {
      this.leaseUntil.delete(space)
      logger.warn({ space }, 'relay lease lost before its cursors were written: left to its holder')
      return
    }
    const db = this.deps.db.prisma
    const ended = results.filter((r) => r.deleted).map((r) => r.lane.service)
    if (ended.length)
      await db.notifyRegistration.deleteMany({ where: { space, service: { in: ended } } })
    const advanced = new Map<string, string[]>()
    for (const r of results) {
      if (r.deleted || r.failure !== undefined || r.cursor === r.lane.cursor || r.cursor === null)
        continue
      advanced.set(r.cursor, [...(advanced.get(r.cursor) ?? []), r.lane.service])
    }
    for (const [cursor, services] of advanced) {
      for (let i = 0; i < services.length; i += 500) {
        await db.notifyRegistration.updateMany({
          where: { space, service: { in: services.slice(i, i + 500) } },
          data: { cursor, attempts: 0, lastError: null },
        })
      }
    }
    for (const r of results.filter((x) => x.failure !== undefined && !x.deleted)) {
      await db.notifyRegistration.updateMany({
        where: { space, service: r.lane.service },
        data: {
          cursor: r.cursor,
          attempts: r.attempts,
          lastError: r.failure,
          nextAttemptAt: this.retryAt(r.attempts),
        },
      })
    }
  }

  /** Fans a queued revocation out to its hosts, or delivers one host's; true when one was sent. */
  private async runNotice(notice: Notice): Promise<boolean> {
    if (!this.holds(notice.space)) return false
    if (notice.service === null) {
      await this.fanOut(notice)
      return false
    }
    const target = await this.target(notice.space, notice.service)
    const { space, credentials } = notice
    const body = JSON.stringify({ space, credentials: JSON.parse(credentials) })
    const outcome =
      'error' in target
        ? target
        : await this.post(target, notice.service, NOTIFY_CREDENTIAL_REVOKED, body)
    const attempts = notice.attempts + 1
    const unsupported = outcome !== 'ok' && UNSUPPORTED.has(outcome.status ?? 0)
    if (outcome !== 'ok' && !unsupported && !outcome.permanent && !this.expired(notice.createdAt)) {
      await this.deps.db.prisma.revocationNotice.update({
        where: { id: notice.id },
        data: { attempts, lastError: outcome.error, nextAttemptAt: this.retryAt(attempts) },
      })
      return false
    }
    if (unsupported) {
      this.deps.logger.info(
        {
          service: notice.service,
          space: notice.space,
          status: outcome.status,
          outcome: 'unsupported',
        },
        'revocation notice not supported by host (generation A): its credentials lapse at expiry',
      )
    }
    await this.deps.db.transact(async (tx) => {
      await tx.revocationNotice.delete({ where: { id: notice.id } })
      if (outcome === 'ok' || unsupported) return
      await tx.deadLetter.create({
        data: {
          id: randomUUID(),
          space: notice.space,
          service: notice.service!,
          spaceRev: nextTid(notice.createdAt.getTime()),
          kind: 'revocation',
          attempts,
          lastError: outcome.error,
          credentials: notice.credentials,
          createdAt: this.deps.clock.now(),
        },
      })
    })
    return outcome === 'ok'
  }

  /**
   * Forwards a join request to the space's managing app, so it decides (it answers through
   * dev.gatehouse.space.decideJoinRequest); true when delivered. Retried like any notice; given up
   * after the retry window, or at once when refused for good, the request simply stays pending for
   * the managers, as it does once decided meanwhile.
   */
  private async runForward(forward: Forward): Promise<boolean> {
    if (!this.holds(forward.space)) return false
    const db = this.deps.db.prisma
    const request = await db.joinRequest.findUnique({ where: { id: forward.requestId } })
    if (request?.status !== 'pending') {
      await db.joinRequestNotice.deleteMany({ where: { id: forward.id } })
      return false
    }
    const body = JSON.stringify({
      space: request.space,
      id: request.id,
      did: request.did,
      ...(request.message !== null ? { message: request.message } : {}),
      createdAt: request.createdAt.toISOString(),
    })
    const target = await this.target(forward.space, forward.service)
    const outcome =
      'error' in target
        ? target
        : await this.post(target, forward.service, NOTIFY_JOIN_REQUEST, body)
    const attempts = forward.attempts + 1
    if (outcome !== 'ok' && !outcome.permanent && !this.expired(forward.createdAt)) {
      await db.joinRequestNotice.update({
        where: { id: forward.id },
        data: { attempts, lastError: outcome.error, nextAttemptAt: this.retryAt(attempts) },
      })
      return false
    }
    if (outcome !== 'ok')
      this.deps.logger.warn(
        { space: forward.space, service: forward.service, attempts, error: outcome.error },
        'join request not forwarded to the managing app: left to the managers',
      )
    await db.joinRequestNotice.deleteMany({ where: { id: forward.id } })
    return outcome === 'ok'
  }

  /**
   * Replaces a queued revocation by one notice per repo host and 100 jtis, addressed to a writer DID
   * that host serves; a writer not resolving now gets its own, resolved again when sent.
   */
  private async fanOut(notice: Notice): Promise<void> {
    const writers = notice.writers
      ? (JSON.parse(notice.writers) as string[])
      : await writerDids(this.deps.db.hot, notice.space)
    const hosts = new Map<string, string>()
    for (const did of writers) {
      const endpoint = await this.deps.resolver.resolveServiceEndpoint(did).catch(() => did)
      if (!hosts.has(endpoint)) hosts.set(endpoint, did)
    }
    const jtis = JSON.parse(notice.credentials) as string[]
    const { space, createdAt } = notice
    const nextAttemptAt = this.deps.clock.now()
    const rows: Omit<Notice, 'writers' | 'attempts' | 'lastError'>[] = []
    for (const service of hosts.values()) {
      for (let i = 0; i < jtis.length; i += REVOCATION_BATCH) {
        const credentials = JSON.stringify(jtis.slice(i, i + REVOCATION_BATCH))
        rows.push({ id: randomUUID(), space, service, credentials, nextAttemptAt, createdAt })
      }
    }
    await this.deps.db.transact(async (tx) => {
      await tx.revocationNotice.delete({ where: { id: notice.id } })
      if (rows.length) await tx.revocationNotice.createMany({ data: rows })
    })
    if (rows.length) this.wake()
  }

  private expired(createdAt: Date): boolean {
    return createdAt.getTime() + this.opts.relayRetryWindowMs <= this.deps.clock.nowMs()
  }

  /** Exponential backoff with 50–100 % jitter after the `attempts`-th failure. */
  private retryAt(attempts: number): Date {
    const backoff = Math.min(RETRY_MAX_MS, this.opts.relayRetryBaseMs * 2 ** (attempts - 1))
    return new Date(this.deps.clock.nowMs() + backoff * (0.5 + Math.random() / 2))
  }

  /** Where and as whom to send for a space: its authority (if still active here), endpoint, key. */
  private async target(space: string, service: string): Promise<Target | Failure> {
    const authority = spaceAuthority(space)
    // Only for authorities Gatehouse still answers for: a transferred one is someone else's now.
    const status = await this.deps.authorities.status(authority)
    if (status !== 'active') {
      return {
        permanent: status === 'transferred' || status === undefined,
        error: `${authority} is ${status ?? 'not held here'}: not relaying for it`,
      }
    }
    let endpoint: string
    try {
      endpoint = await this.deps.resolver.resolveServiceEndpoint(service)
    } catch (err) {
      return { permanent: false, error: `cannot resolve ${service}: ${(err as Error).message}` }
    }
    const key = await this.deps.authorities.key(authority, 'atproto')
    if (!key) return { permanent: false, error: `no #atproto key held for ${authority}` }
    return { authority, endpoint, key }
  }

  /** One authority-signed POST through the endpoint's breaker. */
  private async post(
    target: Target,
    aud: string,
    lxm: string,
    body: string,
  ): Promise<'ok' | Failure> {
    const outcome = await this.attempt(target, aud, lxm, body)
    this.onDelivery(
      lxm,
      outcome === 'ok'
        ? 'delivered'
        : outcome.open
          ? 'circuit_open'
          : outcome.permanent
            ? 'refused'
            : 'retry',
    )
    return outcome
  }

  private async attempt(
    target: Target,
    aud: string,
    lxm: string,
    body: string,
  ): Promise<'ok' | Failure> {
    const url = `${target.endpoint}/xrpc/${lxm}`
    let origin: string
    try {
      origin = this.deps.fetcher.check(url).origin
    } catch (err) {
      return { permanent: true, error: (err as Error).message }
    }
    const breaker = this.breakers.get(origin)
    if (breaker && breaker.openUntilMs > this.deps.clock.nowMs())
      return { permanent: false, open: true, error: `circuit open for ${origin}` }
    const { authority: iss, key } = target
    const jwt = await this.deps.outbound.token({ iss, aud, lxm, key })
    let failure: Failure
    try {
      const status = await this.deps.fetcher.postForStatus(url, {
        headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' },
        body,
        timeoutMs: this.opts.relayTimeoutMs,
        maxBytes: 64 * 1024,
      })
      if (status >= 200 && status < 300) {
        this.breakers.delete(origin)
        return 'ok'
      }
      failure = { permanent: PERMANENT(status), error: `status ${status}`, status }
    } catch (err) {
      const permanent =
        err instanceof FetchError && (err.kind === 'blocked' || err.kind === 'bad_url')
      failure = { permanent, error: (err as Error).message }
    }
    // Only trouble that is retried counts: a host that answers a refusal is up.
    if (!failure.permanent) this.trip(origin)
    return failure
  }

  /** An event's request body: the same for every lane of its space, so serialised once. */
  private body(space: string, event: RelayEvent): string {
    let body = this.bodies.get(event)
    if (body === undefined) {
      body = JSON.stringify(
        event.kind === 'deleted'
          ? { space }
          : {
              space,
              repo: event.repo,
              repoRev: event.repoRev,
              // Generation A syncers read the revision as `rev` (and require it).
              rev: event.repoRev,
              hash: toBytesJson(event.hash!),
              spaceRev: event.spaceRev,
              ...(event.prevSpaceRev ? { prevSpaceRev: event.prevSpaceRev } : {}),
            },
      )
      this.bodies.set(event, body)
    }
    return body
  }

  /** Endpoints whose breaker is open now, and those failing with it still closed. */
  breakerStates(): { open: number; failing: number } {
    const now = this.deps.clock.nowMs()
    let open = 0
    for (const b of this.breakers.values()) if (b.openUntilMs > now) open++
    return { open, failing: this.breakers.size - open }
  }

  private trip(origin: string): void {
    const b = this.breakers.get(origin) ?? { failures: 0, openUntilMs: 0 }
    b.failures++
    if (b.failures >= BREAKER_THRESHOLD)
      b.openUntilMs = this.deps.clock.nowMs() + this.opts.relayBreakerCooldownMs
    this.breakers.set(origin, b)
  }
}

import { spaceAuthority, toBytesJson } from '../lexicon/formats.js'
import { randomUUID } from 'node:crypto'
import type { AuthorityService } from '../authorities/authority-service.js'
import type { OutboundAuth } from '../auth/outbound.js'
import type { Clock } from '../clock.js'
import type { Keypair } from '../crypto/keypair.js'
import type { Db } from '../db/client.js'
import type { DidResolver } from '../identity/resolver.js'
import type { Logger } from '../logger.js'
import { FetchError, type SafeFetcher } from '../net/safe-fetch.js'

/**
 * The durable relay to syncers. Each registration is a lane: it sends the space's events in
 * spaceRev order from its cursor, one at a time, and moves the cursor only after a 2xx, so nothing
 * is skipped and `prevSpaceRev` always links to the notification before (gap-free, in order; a
 * syncer may still see a notification twice after a crash between sending and recording).
 *
 * Failures back off exponentially with jitter, per lane; after the retry window an event is
 * dead-lettered and the lane moves on. A breaker per endpoint stops spending attempts on a dead or
 * hanging syncer, so it never slows the others. Everything is in the database: a restart resumes
 * from the cursors. Run the relay in one process per database (more would send duplicates).
 *
 * Spaces are served side by side, never one after another: each space's due lanes run as one task,
 * with at most `spaceConcurrency` of them in flight, drawing on `concurrency` delivery slots shared
 * by all spaces. So a space whose syncers hang holds at most its share of the slots for the relay
 * timeout, and the loop goes on starting other spaces' tasks meanwhile instead of waiting for it.
 */

export const NOTIFY_WRITE = 'com.atproto.space.notifyWrite'
export const NOTIFY_SPACE_DELETED = 'com.atproto.space.notifySpaceDeleted'
const PERMANENT = (status: number) =>
  status >= 400 && status < 500 && ![408, 425, 429].includes(status)

export interface RelayOptions {
  /** Deliveries in flight at once, all spaces together. */
  concurrency: number
  /** Deliveries of one space in flight at once (at most `concurrency`). */
  spaceConcurrency: number
  timeoutMs: number
  retryBaseMs: number
  retryMaxMs: number
  retryWindowMs: number
  breakerThreshold: number
  breakerCooldownMs: number
  /** Events sent per lane per pass. */
  batch: number
  /** Most lanes kept with a service-auth token ready to send (0: none). */
  warmLanes: number
  /** Lanes of spaces with a write, or registered, within this long are kept warm. */
  warmWindowMs: number
}

export interface RelayCounters {
  forwarded: number
  retried: number
  deadLettered: number
  /** Service-auth tokens signed ahead for warm lanes. */
  warmed: number
}

/** How often an idle relay looks for lanes to warm, and how long a warm token must still last. */
const WARM_EVERY_MS = 5000
const WARM_FOR_SEC = 10

interface Breaker {
  failures: number
  openUntilMs: number
}

/** Delivery slots shared by every space, handed out in the order they were asked for. */
class Slots {
  private readonly waiting: (() => void)[] = []

  constructor(private free: number) {}

  async take(): Promise<void> {
    if (this.free > 0) {
      this.free--
      return
    }
    await new Promise<void>((r) => this.waiting.push(r))
  }

  give(): void {
    const next = this.waiting.shift()
    if (next) next()
    else this.free++
  }
}

type Lane = { space: string; service: string; cursor: string | null; attempts: number }

/** Why a delivery did not happen; a permanent one is dead-lettered at once. */
type Failure = { permanent: boolean; error: string }

interface LaneTarget {
  authority: string
  endpoint: string
  key: Keypair
}

type RelayEvent = {
  kind: string
  spaceRev: string
  repo: string | null
  repoRev: string | null
  hash: Uint8Array | null
  prevSpaceRev: string | null
  createdAt: Date
}

interface LaneResult {
  lane: Lane
  sent: number
  /** Where the lane's cursor should be now. */
  cursor: string | null
  attempts: number
  /** Set when the lane stopped on a retryable failure. */
  failure?: string
  /** The lane delivered (or gave up on) its space's deletion. */
  deleted: boolean
}

export class Relay {
  readonly counters: RelayCounters = { forwarded: 0, retried: 0, deadLettered: 0, warmed: 0 }
  /** Spaces by when they last had a notification to relay (ms), for warming. */
  private readonly activeSpaces = new Map<string, number>()
  private lastWarmMs = -Infinity
  private readonly breakers = new Map<string, Breaker>()
  /** The task of each space being delivered now: a space has at most one at a time. */
  private readonly inflight = new Map<string, Promise<number>>()
  private readonly slots: Slots
  /** Serialised bodies of the events of the current passes (dropped with the event objects). */
  private readonly bodies = new WeakMap<RelayEvent, string>()
  private timer: NodeJS.Timeout | undefined
  private running: Promise<void> | undefined
  private stopped = true
  private wakeRequested = false

  constructor(
    private readonly deps: {
      db: Db
      resolver: DidResolver
      fetcher: SafeFetcher
      authorities: AuthorityService
      outbound: OutboundAuth
      clock: Clock
      logger: Logger
    },
    private readonly opts: RelayOptions,
  ) {
    this.slots = new Slots(opts.concurrency)
  }

  /** Starts the background loop (bin.ts does; tests drive `runOnce` themselves or start it). */
  start(pollMs = 1000): void {
    if (!this.stopped) return
    this.stopped = false
    // Each pass starts the due spaces that are not already in flight and does not wait for them:
    // a task that delivered something wakes the loop when it ends (it may have more to send), and
    // so do new events.
    const loop = async () => {
      while (!this.stopped) {
        this.wakeRequested = false
        try {
          await this.dispatch()
        } catch (err) {
          this.deps.logger.error({ err }, 'relay pass failed')
        }
        if (this.stopped) break
        if (!this.wakeRequested) {
          await new Promise<void>((r) => {
            this.timer = setTimeout(r, pollMs)
            this.wakeUp = () => {
              clearTimeout(this.timer)
              r()
            }
          })
          this.wakeUp = () => {}
        }
      }
    }
    this.running = loop()
  }

  private wakeUp: () => void = () => {}

  /** New events: look again now rather than at the next poll. */
  wake(): void {
    this.wakeRequested = true
    this.wakeUp()
  }

  async stop(): Promise<void> {
    this.stopped = true
    this.wakeUp()
    await this.running
    await Promise.allSettled(this.inflight.values())
  }

  /**
   * One pass over the lanes that are due, waiting for every space it started (spaces already in
   * flight are left to their own tasks). Returns how many notifications were delivered.
   */
  async runOnce(): Promise<number> {
    const sent = await Promise.all(await this.dispatch())
    return sent.reduce((a, b) => a + b, 0)
  }

  /**
   * Starts one task per space with due lanes and none in flight, side by side, and returns them
   * without waiting. Lanes of one space share one read of its pending events, and their cursors are
   * written back in a few grouped updates: a fan-out to many syncers costs a handful of queries, not
   * two per syncer.
   */
  private async dispatch(): Promise<Promise<number>[]> {
    const now = this.deps.clock.now()
    const due = await this.deps.db.prisma.notifyRegistration.findMany({
      where: {
        expiresAt: { gt: now },
        nextAttemptAt: { lte: now },
        // A space in flight keeps its lanes until its task ends; its due lanes must not crowd out
        // other spaces' from this read.
        ...(this.inflight.size ? { space: { notIn: [...this.inflight.keys()] } } : {}),
      },
      orderBy: { nextAttemptAt: 'asc' },
      take: this.opts.concurrency * 32,
      select: { space: true, service: true, cursor: true, attempts: true },
    })
    const bySpace = new Map<string, Lane[]>()
    for (const lane of due) {
      const list = bySpace.get(lane.space) ?? []
      list.push(lane)
      bySpace.set(lane.space, list)
    }
    const started: Promise<number>[] = []
    for (const [space, lanes] of bySpace) {
      // Another pass may have started the space while this one read.
      if (this.inflight.has(space)) continue
      const task = this.runSpace(space, lanes)
      this.inflight.set(space, task)
      task.then(
        (sent) => {
          this.inflight.delete(space)
          if (sent > 0) this.wake()
        },
        (err: unknown) => {
          this.inflight.delete(space)
          this.deps.logger.error({ err, space }, 'relay pass failed')
        },
      )
      started.push(task)
    }
    return started
  }

  private async runSpace(space: string, lanes: Lane[]): Promise<number> {
    const cursors = lanes.map((l) => l.cursor ?? '')
    const from = cursors.reduce((a, b) => (a < b ? a : b))
    const events = await this.deps.db.prisma.spaceEvent.findMany({
      where: { space, ...(from ? { spaceRev: { gt: from } } : {}) },
      orderBy: { spaceRev: 'asc' },
      take: this.opts.batch,
    })
    if (events.length === 0) return 0
    this.activeSpaces.delete(space)
    this.activeSpaces.set(space, this.deps.clock.nowMs())
    const results: LaneResult[] = []
    const queue = lanes.filter((l) => events.some((e) => e.spaceRev > (l.cursor ?? '')))
    // The space's own workers, each holding one shared slot per delivery: however many of its
    // lanes hang, the space never holds more than spaceConcurrency slots.
    const width = Math.min(this.opts.spaceConcurrency, this.opts.concurrency, queue.length)
    const workers = Array.from({ length: width }, async () => {
      for (let lane = queue.shift(); lane; lane = queue.shift()) {
        await this.slots.take()
        try {
          results.push(
            await this.runLane(
              lane,
              events.filter((e) => e.spaceRev > (lane.cursor ?? '')),
            ),
          )
        } finally {
          this.slots.give()
        }
      }
    })
    await Promise.all(workers)
    await this.record(space, results)
    return results.reduce((n, r) => n + r.sent, 0)
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
    // What every event of the lane is sent with (or why none can be), settled once per pass.
    const target = await this.target(lane)
    for (const event of events) {
      const outcome = 'error' in target ? target : await this.send(lane, target, event)
      if (outcome === 'ok') {
        result.sent++
        result.attempts = 0
        result.cursor = event.spaceRev
        this.counters.forwarded++
      } else {
        result.attempts++
        const expired =
          event.createdAt.getTime() + this.opts.retryWindowMs <= this.deps.clock.nowMs()
        if (!outcome.permanent && !expired) {
          this.counters.retried++
          result.failure = outcome.error
          return result
        }
        this.counters.deadLettered++
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

  /** Writes the lanes' new cursors: one update per distinct cursor, one per failing lane. */
  private async record(space: string, results: LaneResult[]): Promise<void> {
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
      const backoff = Math.min(this.opts.retryMaxMs, this.opts.retryBaseMs * 2 ** (r.attempts - 1))
      const delay = backoff * (0.5 + Math.random() / 2)
      await db.notifyRegistration.updateMany({
        where: { space, service: r.lane.service },
        data: {
          cursor: r.cursor,
          attempts: r.attempts,
          lastError: r.failure,
          nextAttemptAt: new Date(this.deps.clock.nowMs() + delay),
        },
      })
    }
  }

  /** Where and as whom a lane's events go: the authority (if still active here), endpoint and key. */
  private async target(lane: Lane): Promise<LaneTarget | Failure> {
    const authority = spaceAuthority(lane.space)
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
      endpoint = await this.deps.resolver.resolveServiceEndpoint(lane.service)
    } catch (err) {
      return {
        permanent: false,
        error: `cannot resolve ${lane.service}: ${(err as Error).message}`,
      }
    }
    const key = await this.deps.authorities.key(authority, 'atproto')
    if (!key) return { permanent: false, error: `no #atproto key held for ${authority}` }
    return { authority, endpoint, key }
  }

  private async send(lane: Lane, target: LaneTarget, event: RelayEvent): Promise<'ok' | Failure> {
    const lxm = event.kind === 'deleted' ? NOTIFY_SPACE_DELETED : NOTIFY_WRITE
    const url = `${target.endpoint}/xrpc/${lxm}`
    let origin: string
    try {
      origin = this.deps.fetcher.check(url).origin
    } catch (err) {
      return { permanent: true, error: (err as Error).message }
    }
    const breaker = this.breakers.get(origin)
    if (breaker && breaker.openUntilMs > Date.now())
      return { permanent: false, error: `circuit open for ${origin}` }
    const body = this.body(lane.space, event)
    const { authority, key } = target
    const jwt = await this.deps.outbound.token({ iss: authority, aud: lane.service, lxm, key })
    try {
      const status = await this.deps.fetcher.postForStatus(url, {
        headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' },
        body,
        timeoutMs: this.opts.timeoutMs,
        maxBytes: 64 * 1024,
      })
      if (status >= 200 && status < 300) {
        this.breakers.delete(origin)
        return 'ok'
      }
      this.trip(origin)
      return { permanent: PERMANENT(status), error: `status ${status}` }
    } catch (err) {
      this.trip(origin)
      const permanent =
        err instanceof FetchError && (err.kind === 'blocked' || err.kind === 'bad_url')
      return { permanent, error: (err as Error).message }
    }
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

  private trip(origin: string): void {
    const b = this.breakers.get(origin) ?? { failures: 0, openUntilMs: 0 }
    b.failures++
    if (b.failures >= this.opts.breakerThreshold)
      b.openUntilMs = Date.now() + this.opts.breakerCooldownMs
    this.breakers.set(origin, b)
  }

  /** Dead letters of a space, newest first. */
  async deadLetters(space: string, limit = 100) {
    return this.deps.db.prisma.deadLetter.findMany({
      where: { space },
      orderBy: { createdAt: 'desc' },
      take: limit,
    })
  }
}

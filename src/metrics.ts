import { createHash, timingSafeEqual } from 'node:crypto'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { Db } from './db/client.js'
import type { Clock } from './clock.js'
import { lanesBehind } from './spaces/events.js'

/** What /metrics reads from the rest of the process when it is scraped. */
export interface MetricSources {
  db: Db
  clock: Clock
  /** Endpoints whose breaker is open now, and those failing with it still closed. */
  breakers(): { open: number; failing: number }
  /** GATEHOUSE_METRICS_TOKEN, which opens `/metrics` on the main port. */
  token?: string
}

const sha256 = (text: string) => createHash('sha256').update(text).digest()

/** Seconds buckets from 1 ms to 10 s: an exchange is a few ms, a bulk import can take seconds. */
const SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10]

/**
 * The process's Prometheus metrics (prom-client, one registry per context). Counters and
 * histograms move where their event happens; gauges of what the database holds (relay lag, dead
 * letters) and of the pool are read when /metrics is scraped. Labels take only values from our own
 * code (route patterns, error names, NSIDs), never a DID, a space or a URL: their number is bounded.
 */
export class Metrics {
  readonly registry = new Registry()

  /** Requests by route pattern (an XRPC method is `/xrpc/NSID`), status and error name. */
  readonly requests = new Counter({
    name: 'gatehouse_http_requests_total',
    help: 'HTTP requests answered, by route, status and XRPC error name',
    labelNames: ['route', 'status', 'error'] as const,
    registers: [this.registry],
  })
  readonly latency = new Histogram({
    name: 'gatehouse_http_request_duration_seconds',
    help: 'Time to answer an HTTP request, by route and status',
    labelNames: ['route', 'status'] as const,
    buckets: SECONDS,
    registers: [this.registry],
  })
  /** getSpaceCredential's answers: issued, or refused with the contract's error name. */
  readonly credentialDecisions = new Counter({
    name: 'gatehouse_credential_decisions_total',
    help: 'getSpaceCredential decisions, by outcome and refusal',
    labelNames: ['outcome', 'refusal'] as const,
    registers: [this.registry],
  })
  /** The relay's POSTs (notifyWrite, revocation notices, join-request forwards) by outcome. */
  readonly deliveries = new Counter({
    name: 'gatehouse_relay_deliveries_total',
    help: 'Relay deliveries attempted, by method and outcome (delivered, retry, refused, circuit_open)',
    labelNames: ['method', 'outcome'] as const,
    registers: [this.registry],
  })
  readonly dbTransactions = new Histogram({
    name: 'gatehouse_db_transaction_duration_seconds',
    help: 'Time a database transaction takes, queueing included, by path (prisma, hot)',
    labelNames: ['path'] as const,
    buckets: SECONDS,
    registers: [this.registry],
  })

  /** SHA-256 of the `Authorization` header that opens `/metrics` on the main port. */
  private readonly expected?: Buffer

  constructor(sources: MetricSources) {
    const { db, clock, token } = sources
    if (token) this.expected = sha256(`Bearer ${token}`)
    const registers = [this.registry]
    // Both from one query per scrape (text() starts it; collects run concurrently).
    const lanes = () => (this.lanes ??= lanesBehind(db.hot, clock.now()))
    new Gauge({
      name: 'gatehouse_relay_lag_seconds',
      help: 'Age of the oldest notification not yet delivered, over all live registrations',
      registers,
      async collect() {
        const { oldest } = await lanes()
        this.set(oldest ? Math.max(0, (clock.nowMs() - oldest.getTime()) / 1000) : 0)
      },
    })
    new Gauge({
      name: 'gatehouse_relay_lanes_behind',
      help: 'Live registrations with a notification not yet delivered',
      registers,
      async collect() {
        this.set((await lanes()).count)
      },
    })
    new Gauge({
      name: 'gatehouse_relay_breakers',
      help: 'Endpoints by breaker state: open (not tried until it cools down) or failing (closed)',
      labelNames: ['state'] as const,
      registers,
      collect() {
        const { open, failing } = sources.breakers()
        this.set({ state: 'open' }, open)
        this.set({ state: 'failing' }, failing)
      },
    })
    new Gauge({
      name: 'gatehouse_dead_letters',
      help: 'Notifications given up and kept for operators (until the retention period)',
      registers,
      async collect() {
        this.set(await db.prisma.deadLetter.count())
      },
    })
    const pool = db.pool
    if (pool) {
      new Gauge({
        name: 'gatehouse_db_pool_connections',
        help: 'PostgreSQL pool connections by state (total, idle, waiting: requests queued for one)',
        labelNames: ['state'] as const,
        registers,
        collect() {
          this.set({ state: 'total' }, pool.totalCount)
          this.set({ state: 'idle' }, pool.idleCount)
          this.set({ state: 'waiting' }, pool.waitingCount)
        },
      })
    }
    db.onTransaction = (path, seconds) => this.dbTransactions.observe({ path }, seconds)
  }

  /** Whether `/metrics` is served on the main port (behind the token). */
  get tokenSet(): boolean {
    return this.expected !== undefined
  }

  /** Whether an `Authorization` header carries the metrics token (in constant time). */
  admits(authorization: string | undefined): boolean {
    return !!this.expected && timingSafeEqual(sha256(authorization ?? ''), this.expected)
  }

  private processMetrics = false
  /** This scrape's lanes behind (see the relay gauges). */
  private lanes: ReturnType<typeof lanesBehind> | undefined

  /** The exposition text. Process metrics are measured from the first scrape on. */
  async text(): Promise<string> {
    if (!this.processMetrics) {
      // Event-loop delay, heap and resident memory, GC, handles: prom-client's process metrics.
      collectDefaultMetrics({ register: this.registry, prefix: 'gatehouse_' })
      this.processMetrics = true
    }
    this.lanes = undefined
    return this.registry.metrics()
  }

  /** One answered request; `error` is the XRPC error name of a refusal or failure. */
  answered(route: string, status: number, seconds: number, error = ''): void {
    const code = String(status)
    this.requests.inc({ route, status: code, error })
    this.latency.observe({ route, status: code }, seconds)
    if (route === '/xrpc/com.atproto.space.getSpaceCredential')
      this.credentialDecisions.inc(
        status === 200
          ? { outcome: 'issued', refusal: '' }
          : { outcome: status < 500 ? 'refused' : 'error', refusal: error },
      )
  }
}

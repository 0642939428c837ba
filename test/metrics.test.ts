/**
 * `/metrics`: behind GATEHOUSE_METRICS_TOKEN on the main port, or on a port of its own, never
 * public by default; each named metric is scraped before and after its event and must move.
 */
import t from 'tap'
import { freePort, runGatehouse } from './_helpers/process.js'
import { processWorld } from './_helpers/db.js'
import { spaceWorld, type SpaceWorld } from './_helpers/spaces.js'
import { notifier, registeredSyncer, tidAt } from './_helpers/sync.js'

const TOKEN = 'metrics-token-0123456789abcdef0123456789'

/** The value of `name` summed over the samples whose labels include `labels`; 0 if none. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m || m[1] !== name) continue
    const have = Object.fromEntries(
      [...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]),
    )
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[3])
  }
  return sum
}

async function scrape(w: SpaceWorld): Promise<string> {
  const res = await w.a.fetch('/metrics', { headers: { authorization: `Bearer ${TOKEN}` } })
  if (res.status !== 200) throw new Error(`scrape: ${res.status}`)
  return res.text()
}

t.test('the token opens /metrics on the main port; each metric moves with its event', async (t) => {
  const w = await spaceWorld(t, {
    env: {
      GATEHOUSE_METRICS_TOKEN: TOKEN,
      GATEHOUSE_RELAY_RETRY_BASE_MS: '1000',
      GATEHOUSE_RELAY_TIMEOUT_MS: '500',
    },
  })
  const none = await w.a.fetch('/metrics')
  t.equal(none.status, 401)
  t.match(await none.json(), { error: 'AuthenticationRequired' })
  const wrong = await w.a.fetch('/metrics', { headers: { authorization: `Bearer ${TOKEN}x` } })
  t.equal(wrong.status, 401, 'a wrong token is refused')
  const ok = await w.a.fetch('/metrics', { headers: { authorization: `Bearer ${TOKEN}` } })
  t.equal(ok.status, 200)
  t.match(ok.headers.get('content-type'), /^text\/plain; version=0\.0\.4/)

  // Requests and their latency, by route and status.
  let before = await scrape(w)
  const route = { route: '/xrpc/_health', status: '200' }
  await w.a.fetch('/xrpc/_health')
  let after = await scrape(w)
  t.equal(
    sample(after, 'gatehouse_http_requests_total', route),
    sample(before, 'gatehouse_http_requests_total', route) + 1,
  )
  t.equal(
    sample(after, 'gatehouse_http_request_duration_seconds_count', route),
    sample(before, 'gatehouse_http_request_duration_seconds_count', route) + 1,
  )
  await w.a.fetch('/xrpc/com.atproto.space.nope')
  t.equal(
    sample(await scrape(w), 'gatehouse_http_requests_total', {
      route: 'unmatched',
      status: '501',
      error: 'MethodNotImplemented',
    }),
    1,
    'an unknown method is counted under one label, by its error name',
  )

  // Credential decisions by outcome and refusal.
  const member = w.user('member')
  await w.a.ctx.spaces.putMember(w.space, member.did, { read: true, write: true })
  before = await scrape(w)
  t.equal((await w.getCredential(member)).status, 200)
  const refused = await w.getCredential(w.user('stranger'))
  t.equal(refused.status, 400)
  after = await scrape(w)
  const issued = { outcome: 'issued' }
  const refusal = { outcome: 'refused', refusal: String(refused.body.error) }
  const decisions = 'gatehouse_credential_decisions_total'
  t.equal(sample(after, decisions, issued), sample(before, decisions, issued) + 1)
  t.equal(sample(after, decisions, refusal), sample(before, decisions, refusal) + 1)

  // The relay: a syncer that fails, then refuses for good; lag, breakers, deliveries, dead letters.
  let answer = 500
  await registeredSyncer(t, w, () => answer, member.did)
  const notify = notifier(w)
  before = await scrape(w)
  t.equal((await notify(member, { repoRev: tidAt(w.a.clock.nowMs()) })).status, 200)
  t.equal(
    sample(await scrape(w), 'gatehouse_db_transaction_duration_seconds_count', { path: 'hot' }),
    sample(before, 'gatehouse_db_transaction_duration_seconds_count', { path: 'hot' }) + 1,
    'the write notification was one timed transaction',
  )
  w.a.clock.advance(2000)
  await w.a.ctx.relay.runOnce()
  after = await scrape(w)
  const lxm = 'com.atproto.space.notifyWrite'
  t.equal(sample(after, 'gatehouse_relay_deliveries_total', { method: lxm, outcome: 'retry' }), 1)
  t.equal(sample(after, 'gatehouse_relay_lanes_behind'), 1, 'one lane is behind')
  t.equal(sample(after, 'gatehouse_relay_lag_seconds'), 2, 'by the age of its first event')
  t.equal(sample(after, 'gatehouse_relay_breakers', { state: 'failing' }), 1)

  answer = 200
  w.a.clock.advance(60_000)
  await w.a.ctx.relay.runOnce()
  after = await scrape(w)
  t.equal(
    sample(after, 'gatehouse_relay_deliveries_total', { method: lxm, outcome: 'delivered' }),
    1,
  )
  t.equal(sample(after, 'gatehouse_relay_lanes_behind'), 0, 'caught up')
  t.equal(sample(after, 'gatehouse_relay_lag_seconds'), 0)
  t.equal(sample(after, 'gatehouse_relay_breakers', { state: 'failing' }), 0)

  answer = 400
  t.equal((await notify(member, { repoRev: tidAt(w.a.clock.nowMs()) })).status, 200)
  await w.a.ctx.relay.runOnce()
  after = await scrape(w)
  t.equal(sample(after, 'gatehouse_relay_deliveries_total', { method: lxm, outcome: 'refused' }), 1)
  t.equal(sample(after, 'gatehouse_dead_letters'), 1, 'a refusal for good is a dead letter')

  // Process metrics, and the pool where there is one.
  t.ok(sample(after, 'gatehouse_nodejs_eventloop_lag_p99_seconds') >= 0)
  t.ok(sample(after, 'gatehouse_process_resident_memory_bytes') > 0)
  if (w.a.database.kind === 'postgres')
    t.ok(sample(after, 'gatehouse_db_pool_connections', { state: 'total' }) >= 1)
  else t.notMatch(after, /gatehouse_db_pool_connections/, 'SQLite has no pool')
})

t.test(
  'the relay gauges hold with 200,000 lanes behind (a syncer down on a big host)',
  async (t) => {
    const w = await spaceWorld(t, { env: { GATEHOUSE_METRICS_TOKEN: TOKEN } })
    const member = w.user('member')
    await w.a.ctx.spaces.putMember(w.space, member.did, { read: true, write: true })
    t.equal((await notifier(w)(member, { repoRev: tidAt(w.a.clock.nowMs()) })).status, 200)
    // Seeded in one statement: registering this many through the API would take minutes.
    const LANES = 200_000
    const now = w.a.clock.now()
    const expires = new Date(now.getTime() + 3_600_000)
    await w.a.ctx.db.hot.execute(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
       INSERT INTO notify_registration
         (space, service, endpoint, expires_at, created_at, attempts, next_attempt_at)
       SELECT ?, 'did:web:syncer' || i || '.example#atproto_space_syncer',
              'https://syncer' || i || '.example', ?, ?, 0, ? FROM n`,
      [LANES, w.space, expires, now, expires],
    )
    w.a.clock.advance(5000)
    const text = await scrape(w)
    t.equal(sample(text, 'gatehouse_relay_lanes_behind'), LANES)
    t.equal(sample(text, 'gatehouse_relay_lag_seconds'), 5)
  },
)

t.test('without a token or a port, /metrics is not served', async (t) => {
  const w = await spaceWorld(t)
  const res = await w.a.fetch('/metrics')
  t.equal(res.status, 404)
})

t.test('GATEHOUSE_METRICS_PORT: /metrics on a port of its own, not on the main one', async (t) => {
  const { dataDir, db } = await processWorld(t, 'metrics')
  const [port, metricsPort] = [await freePort(), await freePort()]
  const proc = runGatehouse([], {
    GATEHOUSE_PORT: String(port),
    GATEHOUSE_DATA_DIR: dataDir,
    GATEHOUSE_DATABASE_URL: db.url,
    GATEHOUSE_METRICS_PORT: String(metricsPort),
  })
  t.teardown(() => proc.child.kill('SIGKILL'))
  await proc.waitFor(/gatehouse is serving/)
  await fetch(`http://127.0.0.1:${port}/xrpc/_health`)
  const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`)
  t.equal(res.status, 200)
  const text = await res.text()
  t.equal(sample(text, 'gatehouse_http_requests_total', { route: '/xrpc/_health' }), 1)
  t.equal((await fetch(`http://127.0.0.1:${metricsPort}/xrpc/_health`)).status, 404)
  t.equal((await fetch(`http://127.0.0.1:${port}/metrics`)).status, 404, 'not on the main port')

  // The port in use: one line naming the variable.
  const clash = runGatehouse([], {
    GATEHOUSE_PORT: String(await freePort()),
    GATEHOUSE_DATA_DIR: dataDir,
    GATEHOUSE_DATABASE_URL: db.url,
    GATEHOUSE_METRICS_PORT: String(metricsPort),
  })
  t.not((await clash.exited).code, 0)
  t.match(clash.stderr.join('\n'), /GATEHOUSE_METRICS_PORT: 127\.0\.0\.1:\d+ is already in use/)
  proc.child.kill('SIGTERM')
  t.equal((await proc.exited).code, 0, 'shuts down cleanly with the metrics port open')
})

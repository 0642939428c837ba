/**
 * The durable relay to real loopback syncers: every notification in order with a prevSpaceRev chain a
 * syncer can check for gaps; retries after failures; a hanging syncer never slows the others (timeout,
 * then the breaker); delivery resumes after a restart; expired registrations get nothing; dead
 * letters after the retry window or a permanent refusal; notifySpaceDeleted through the same lanes;
 * a space whose syncers hang holds at most its share of the delivery slots and never holds up
 * another space's deliveries, in a single pass or in the running loop.
 */
import t from 'tap'
import { verifyServiceJwt } from '../../src/crypto/service-auth.js'
import type { ServerResponse } from 'node:http'
import { TestArbiter } from '../_helpers/arbiter.js'
import { MockService } from '../_helpers/services.js'
import { MEMBERS_ONLY, registerAuthority, spaceWorld, type SpaceWorld } from '../_helpers/spaces.js'
import { listDeadLetters, notifier, tidAt } from '../_helpers/sync.js'
import { serviceJwt } from '../_helpers/tokens.js'

type Behaviour = () => number | 'hang'

async function syncer(
  t: Parameters<typeof spaceWorld>[0],
  w: SpaceWorld,
  name: string,
  behaviour: Behaviour = () => 200,
  space = w.space,
) {
  const svc = await MockService.start(t)
  svc.handler = (_req, res) => {
    const b = behaviour()
    if (b === 'hang') return
    svc.json(res, b, {})
  }
  const id = w.web.create(name, {
    services: { atproto_space_syncer: { type: 'AtprotoSpaceSyncer', endpoint: svc.origin } },
  })
  const service = `${id.did}#atproto_space_syncer`
  await w.a.ctx.notify.register(
    space,
    service,
    svc.origin,
    new Date(w.a.clock.nowMs() + 86_400_000),
    id.did,
  )
  return {
    svc,
    service,
    received: () =>
      svc.calls
        .filter((c) => c.path.endsWith('notifyWrite'))
        .map((c) => c.body as Record<string, string>),
  }
}

async function setup(
  t: Parameters<typeof spaceWorld>[0] & { equal(a: unknown, b: unknown): void },
  env: Record<string, string> = {},
) {
  const w = await spaceWorld(t, {
    env: { GATEHOUSE_RELAY_RETRY_BASE_MS: '1000', GATEHOUSE_RELAY_TIMEOUT_MS: '300', ...env },
  })
  const writer = w.user('writer')
  await w.a.ctx.spaces.putMember(w.space, writer.did, { read: true, write: true })
  const notify = notifier(w)
  let n = 0
  const write = async () =>
    t.equal((await notify(writer, { repoRev: tidAt(w.a.clock.nowMs() + ++n) })).status, 200)
  /** Runs relay passes, moving the clock past each backoff, until `done` or `passes` run out. */
  const drain = async (done: () => boolean, passes = 30) => {
    for (let i = 0; i < passes && !done(); i++) {
      await w.a.ctx.relay.runOnce()
      w.a.clock.advance(2000)
    }
  }
  return { w, writer, write, drain }
}

t.test(
  'every notification arrives in order with a gap-free prevSpaceRev chain, signed by the authority',
  async (t) => {
    const { w, write, drain } = await setup(t)
    const s = await syncer(t, w, 'syncer')
    for (let i = 0; i < 5; i++) await write()
    await drain(() => s.received().length >= 5)
    const got = s.received()
    t.equal(got.length, 5)
    got.forEach((n, i) => {
      t.match(n, { space: w.space, repo: w.user('writer').did, spaceRev: /^[2-7a-z]{13}$/ })
      if (i === 0) t.notOk('prevSpaceRev' in n, 'the first update has no prevSpaceRev')
      else t.equal(n.prevSpaceRev, got[i - 1]!.spaceRev, `notification ${i} links to ${i - 1}`)
    })
    const claims = await verifyServiceJwt(String(s.svc.calls[0]!.headers.authorization).slice(7), {
      nowSec: w.now(),
      lxm: 'com.atproto.space.notifyWrite',
      aud: [s.service],
      getSigningKey: async () => ({ curve: 'secp256k1', publicKey: w.authority.key.publicKey }),
    })
    t.equal(claims.iss, w.authority.did)
    const reg = await w.a.ctx.db.prisma.notifyRegistration.findFirst({ where: { space: w.space } })
    t.equal(reg?.cursor, got[4]!.spaceRev, 'the cursor is at the last one')
  },
)

t.test(
  'a syncer that answers 500 twice gets everything after the retries, still in order',
  async (t) => {
    const { w, write, drain } = await setup(t)
    const answers = [500, 500]
    const s = await syncer(t, w, 'flaky', () => answers.shift() ?? 200)
    for (let i = 0; i < 3; i++) await write()
    await drain(() => s.received().length >= 5)
    const spaceRevs = s.received().map((n) => n.spaceRev)
    t.equal(spaceRevs.length, 5, 'two failed attempts, then three deliveries')
    t.same([...new Set(spaceRevs)].length, 3)
    t.same(spaceRevs.slice(2), [...spaceRevs.slice(2)].sort(), 'delivered in order')
    const reg = await w.a.ctx.db.prisma.notifyRegistration.findFirst({ where: { space: w.space } })
    t.equal(reg?.cursor, spaceRevs[4], 'the cursor is at the last delivered event')
  },
)

t.test(
  'a hanging syncer does not slow the others; the breaker stops spending time on it',
  async (t) => {
    // Outbound requests in general may wait 20 s here: only the relay's own 300 ms timeout can end
    // the pass within the bound below, however busy the machine is. The breaker stays open for an
    // hour of the manual clock, so what it does is read from the clock, not timed.
    const { w, write } = await setup(t, {
      GATEHOUSE_FETCH_TIMEOUT_MS: '20000',
      GATEHOUSE_RELAY_BREAKER_COOLDOWN_MS: '3600000',
    })
    const slow = await syncer(t, w, 'hangs', () => 'hang')
    const fast = await syncer(t, w, 'fine')
    await write()
    const started = Date.now()
    await w.a.ctx.relay.runOnce()
    t.equal(fast.received().length, 1, 'the healthy syncer got its notification in the same pass')
    t.ok(Date.now() - started < 5000, 'the pass was bounded by the relay timeout')
    // Five failures in a row open the breaker (each pass waits out the lane's backoff first).
    for (let i = 0; i < 4; i++) {
      w.a.clock.advance(60_000)
      await w.a.ctx.relay.runOnce()
    }
    t.equal(slow.svc.calls.length, 5, 'five attempts, each ended by the relay timeout')
    const lane = () =>
      w.a.ctx.db.prisma.notifyRegistration.findFirstOrThrow({ where: { service: slow.service } })
    w.a.clock.advance(120_000)
    await write()
    await w.a.ctx.relay.runOnce()
    t.equal(slow.svc.calls.length, 5, 'breaker open: no request to the hanging syncer')
    t.equal(fast.received().length, 2)
    t.match((await lane()).lastError, /^circuit open for /, 'the attempt failed at once')
    w.a.clock.advance(3_600_000)
    await w.a.ctx.relay.runOnce()
    t.equal(slow.svc.calls.length, 6, 'after the cooldown (manual clock) it is tried again')
  },
)

t.test('pending notifications survive a restart and are delivered after it', async (t) => {
  const { w, write } = await setup(t)
  let up = false
  const s = await syncer(t, w, 'later', () => (up ? 200 : 503))
  for (let i = 0; i < 3; i++) await write()
  await w.a.ctx.relay.runOnce()
  t.equal(s.received().length, 1, 'one failed attempt')
  await w.a.stop()
  up = true
  const b = await TestArbiter.create(t, {
    database: w.a.database,
    dataDir: w.a.dataDir,
    env: { GATEHOUSE_RELAY_TIMEOUT_MS: '300' },
  })
  b.clock.set(w.a.clock.nowMs() + 3_600_000)
  for (let i = 0; i < 5 && s.received().length < 4; i++) {
    await b.ctx.relay.runOnce()
    b.clock.advance(3_600_000)
  }
  const revs = s
    .received()
    .slice(1)
    .map((n) => n.spaceRev)
  t.equal(revs.length, 3, 'all three delivered by the new process')
  t.same(revs, [...revs].sort())
})

t.test('expired registrations get nothing', async (t) => {
  const { w, write, drain } = await setup(t)
  const s = await syncer(t, w, 'gone')
  w.a.clock.advance(25 * 3_600_000)
  await write()
  await drain(() => false, 3)
  t.equal(s.svc.calls.length, 0)
})

t.test(
  'dead letters: after the retry window, or at once for a permanent refusal; the lane moves on',
  async (t) => {
    const { w, write, drain } = await setup(t, { GATEHOUSE_RELAY_RETRY_WINDOW_SEC: '5' })
    const always500 = await syncer(t, w, 'broken', () => 500)
    const refuses = await syncer(t, w, 'refuses', () => 400)
    await write()
    await write()
    await drain(() => false, 10)
    const dead = await w.a.ctx.db.prisma.deadLetter.findMany({ where: { space: w.space } })
    t.equal(
      dead.filter((d) => d.service === refuses.service).length,
      2,
      'a 400 is dead-lettered at once',
    )
    t.equal(refuses.svc.calls.length, 2, 'one attempt each')
    t.equal(
      dead.filter((d) => d.service === always500.service).length,
      2,
      'the 500s after the retry window',
    )
    const body = (await listDeadLetters(w)) as {
      deadLetters: { service: string; lastError?: string; kind: string }[]
    }
    t.equal(body.deadLetters.length, 4, 'visible through dev.gatehouse.notify.listDeadLetters')
    t.match(
      body.deadLetters.find((d) => d.service === refuses.service),
      { kind: 'write', lastError: 'status 400' },
    )
    t.equal(await w.a.ctx.db.prisma.spaceEvent.count({ where: { space: w.space } }), 2)
  },
)

t.test(
  'deleteSpace sends notifySpaceDeleted through the lanes, then drops the registrations',
  async (t) => {
    const { w, write, drain } = await setup(t)
    const s = await syncer(t, w, 'watcher')
    await write()
    const owner = w.user('owner')
    await w.a.ctx.managers.change(w.authority.did, owner.did, 'owner', 'operator')
    const nsid = 'com.atproto.simplespace.deleteSpace'
    const res = await w.a.fetch(`/xrpc/${nsid}`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${serviceJwt({ iss: owner, aud: w.authority.did, lxm: nsid, nowSec: w.now() })}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ space: w.space }),
    })
    t.equal(res.status, 200)
    await drain(() => s.svc.calls.some((c) => c.path.endsWith('notifySpaceDeleted')))
    const last = s.svc.calls[s.svc.calls.length - 1]!
    t.equal(last.path, '/xrpc/com.atproto.space.notifySpaceDeleted')
    t.same(last.body, { space: w.space })
    t.equal(await w.a.ctx.db.prisma.notifyRegistration.count({ where: { space: w.space } }), 0)
  },
)

/**
 * Syncers on one endpoint that never answer until released (then 200): only the relay's own
 * timeout could end their deliveries, and the tests below release them long before it.
 */
async function hangingSyncers(
  t: Parameters<typeof spaceWorld>[0],
  w: SpaceWorld,
  space: string,
  count: number,
) {
  const held: ServerResponse[] = []
  let released = false
  const svc = await MockService.start(t, (_req, res) => {
    if (released) svc.json(res, 200, {})
    else held.push(res)
  })
  for (let i = 0; i < count; i++) {
    const id = w.web.create(`hangs-${i}`, {
      services: { atproto_space_syncer: { type: 'AtprotoSpaceSyncer', endpoint: svc.origin } },
    })
    await w.a.ctx.notify.register(
      space,
      `${id.did}#atproto_space_syncer`,
      svc.origin,
      new Date(w.a.clock.nowMs() + 86_400_000),
      id.did,
    )
  }
  return {
    /** Deliveries it holds unanswered. */
    pending: () => held.filter((r) => !r.writableEnded).length,
    release() {
      released = true
      for (const res of held) svc.json(res, 200, {})
    },
  }
}

/** Waits (polling, not timing anything) until `done`, or until `giveUp` says it never will be. */
async function until(done: () => boolean, giveUp: () => boolean = () => false) {
  while (!done() && !giveUp()) await new Promise((r) => setTimeout(r, 10))
}

async function twoSpaces(
  t: Parameters<typeof spaceWorld>[0] & { equal(a: unknown, b: unknown): void },
) {
  // Two slots, one per space; a hanging delivery could only be ended by the relay's 20 s timeout.
  const ctx = await setup(t, {
    GATEHOUSE_RELAY_CONCURRENCY: '2',
    GATEHOUSE_RELAY_SPACE_CONCURRENCY: '1',
    GATEHOUSE_RELAY_TIMEOUT_MS: '20000',
    GATEHOUSE_FETCH_TIMEOUT_MS: '20000',
  })
  const { w, writer } = ctx
  const other = (
    await w.a.ctx.spaces.create({
      authority: w.authority.did,
      spaceType: 'com.example.forum',
      skey: 'unrelated',
      ...MEMBERS_ONLY,
    })
  ).uri
  await w.a.ctx.spaces.putMember(other, writer.did, { read: true, write: true })
  const notify = notifier(w)
  let n = 0
  const writeTo = async (space: string) =>
    t.equal((await notify(writer, { space, repoRev: tidAt(w.a.clock.nowMs() + ++n) })).status, 200)
  return { ...ctx, other, writeTo }
}

t.test(
  "one pass: a space whose syncers hang takes only its share of the slots, and another space's syncer is served before they time out",
  async (t) => {
    const { w, other, writeTo } = await twoSpaces(t)
    // The hanging space's lanes are due first, so a pass that walked spaces in turn would wait on them.
    const hangs = await hangingSyncers(t, w, w.space, 3)
    w.a.clock.advance(1)
    const fine = await syncer(t, w, 'unrelated-syncer', () => 200, other)
    await writeTo(w.space)
    await writeTo(other)
    const pass = w.a.ctx.relay.runOnce()
    let passEnded = false
    void pass.then(() => (passEnded = true))
    await until(
      () => fine.received().length > 0,
      () => passEnded,
    )
    t.equal(fine.received().length, 1, 'the unrelated syncer got its notification')
    t.notOk(passEnded, 'the pass was still going, no hanging delivery had timed out')
    t.equal(hangs.pending(), 1, 'the hanging space held one delivery slot, its share, not both')
    hangs.release()
    t.equal(await pass, 4, 'the pass ends once the hanging syncers answer')
  },
)

t.test(
  "the running loop serves another space's new write while a space's syncers hang",
  async (t) => {
    const { w, other, writeTo } = await twoSpaces(t)
    const hangs = await hangingSyncers(t, w, w.space, 1)
    const fine = await syncer(t, w, 'unrelated-syncer', () => 200, other)
    w.a.ctx.relay.start(50)
    t.teardown(() => w.a.ctx.relay.stop())
    await writeTo(w.space)
    await until(() => hangs.pending() === 1)
    t.equal(hangs.pending(), 1, 'a delivery to the hanging syncer is in flight')
    await writeTo(other)
    await until(() => fine.received().length > 0)
    t.equal(fine.received().length, 1, 'the other space was served')
    t.equal(hangs.pending(), 1, 'while the hanging delivery was still waiting (20 s timeout)')
    hangs.release()
    await w.a.ctx.relay.stop()
    const lanes = await w.a.ctx.db.prisma.notifyRegistration.findMany()
    t.ok(
      lanes.every((l) => l.cursor !== null && l.lastError === null),
      'both delivered',
    )
  },
)

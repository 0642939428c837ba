/**
 * Misbehaving syncers never delay the others, through the real `gatehouse serve` process and its
 * running relay: beside a good syncer, syncers that reset the connection, accept and never answer,
 * or answer 500. Every good syncer gets every event in order, each well within the relay's
 * timeout of its write (the only thing that could end a hanging delivery), while the bad ones are
 * still failing; once they recover they get everything, in order, through the relay's retries.
 * SQLite here, PostgreSQL in CI's PostgreSQL leg.
 */
import type { ServerResponse } from 'node:http'
import tap from 'tap'
import { encodeTid } from '../../src/spaces/tid.js'
import type { TestLike } from '../_helpers/arbiter.js'
import { processWorld } from '../_helpers/db.js'
import { serveEnv, startServe } from '../_helpers/serve.js'
import { MockService } from '../_helpers/services.js'
import { MEMBERS_ONLY, sideWorld } from '../_helpers/spaces.js'
import { postNotifyWrite } from '../_helpers/sync.js'

/** The relay's timeout: a hanging delivery holds on for this long before the relay gives up on it. */
const RELAY_TIMEOUT_MS = 5000
/** Writes per space after the first (which warms the process up and is not timed). */
const WRITES = 6

type Mode = 'good' | 'reset' | 'hang' | '500'

type Notification = { spaceRev: string; repoRev: string; prevSpaceRev?: string }

/**
 * A syncer on its own loopback endpoint, registered for `space`. Until `heal()` a bad one
 * misbehaves on every notification; after it, it answers 200 like the good one. `delivered` holds
 * only the notifications it answered 200 to (what the relay counts as delivered), with the time.
 */
async function syncer(
  t: TestLike,
  world: Awaited<ReturnType<typeof sideWorld>>,
  space: string,
  name: string,
  mode: Mode,
) {
  const delivered: (Notification & { atMs: number })[] = []
  const held = new Set<ServerResponse>()
  /** When the relay gave up on each delivery it held (its timeout). */
  const released: number[] = []
  let misbehaving = mode !== 'good'
  let failures = 0
  const svc = await MockService.start(t, (req, res) => {
    if (!req.path.endsWith('/com.atproto.space.notifyWrite')) return void res.writeHead(404).end()
    if (misbehaving) {
      failures++
      if (mode === 'reset') res.socket?.destroy()
      else if (mode === '500') svc.json(res, 500, { error: 'InternalServerError', message: 'no' })
      else {
        held.add(res)
        res.on('close', () => held.delete(res) && released.push(Date.now()))
      }
      return
    }
    delivered.push({ ...(req.body as Notification), atMs: Date.now() })
    svc.json(res, 200, {})
  })
  const id = world.web.create(name, {
    services: { atproto_space_syncer: { type: 'AtprotoSpaceSyncer', endpoint: svc.origin } },
  })
  const service = `${id.did}#atproto_space_syncer`
  await world.ctx.notify.register(
    space,
    service,
    svc.origin,
    new Date(Date.now() + 86_400_000),
    id.did,
  )
  return {
    name,
    space,
    delivered,
    /** Notifications it failed so far. */
    failures: () => failures,
    /** Deliveries it is holding unanswered now (the relay still waiting for them). */
    holding: () => held.size,
    /** When the relay first gave up on a delivery it held; Infinity while it has not. */
    firstReleaseMs: () => released[0] ?? Infinity,
    heal() {
      misbehaving = false
      // What it held is dropped, as a syncer coming back from a hang would: the relay retries it.
      for (const res of held) {
        held.delete(res)
        res.destroy()
      }
    },
  }
}

type Syncer = Awaited<ReturnType<typeof syncer>>

/** Waits (polling) until `done`, for at most `ms`; whether it came true. */
async function until(done: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  while (!done() && Date.now() < end) await new Promise((r) => setTimeout(r, 20))
  return done()
}

tap.test('syncers that reset, hang or answer 500 never delay the others', async (t) => {
  const { dataDir, db } = await processWorld(t, 'syncers')
  const env = serveEnv(dataDir, db.url, {
    GATEHOUSE_RELAY_TIMEOUT_MS: String(RELAY_TIMEOUT_MS),
    // Retries and the breaker's pause short, so the bad syncers recover quickly once healed.
    GATEHOUSE_RELAY_RETRY_BASE_MS: '50',
    GATEHOUSE_RELAY_BREAKER_COOLDOWN_MS: '200',
  })
  const world = await sideWorld(t, env, 'syncers-one')
  const { ctx, web, authority } = world
  const writer = web.create('writer')
  // Space "mixed": a good syncer beside one that resets and one that answers 500. Space "hanging":
  // a good syncer beside one that never answers. Space "quiet": only a good syncer.
  const spaces: Record<string, string> = { mixed: world.space }
  for (const skey of ['hanging', 'quiet'])
    spaces[skey] = (
      await ctx.spaces.create({
        authority: authority.did,
        spaceType: 'com.example.forum',
        skey: `syncers-${skey}`,
        ...MEMBERS_ONLY,
      })
    ).uri
  for (const space of Object.values(spaces))
    await ctx.spaces.putMember(space, writer.did, { read: true, write: true })
  const good = {
    mixed: await syncer(t, world, spaces.mixed!, 'good-mixed', 'good'),
    hanging: await syncer(t, world, spaces.hanging!, 'good-hanging', 'good'),
    quiet: await syncer(t, world, spaces.quiet!, 'good-quiet', 'good'),
  }
  const bad = [
    await syncer(t, world, spaces.mixed!, 'resets', 'reset'),
    await syncer(t, world, spaces.mixed!, 'fails', '500'),
    await syncer(t, world, spaces.hanging!, 'hangs', 'hang'),
  ]
  const { url } = await startServe(t, env)

  /** Per space, the repoRevs written in order and when each write was sent. */
  const written = new Map<string, { repoRev: string; sentMs: number }[]>()
  const statuses: number[] = []
  let rev = BigInt(Date.now()) * 1000n
  const writeEach = async () => {
    for (const space of Object.values(spaces)) {
      const repoRev = encodeTid(++rev, 0)
      const sentMs = Date.now()
      const { status } = await postNotifyWrite(url, {
        authority: authority.did,
        space,
        writer,
        repoRev,
      })
      statuses.push(status)
      written.set(space, [...(written.get(space) ?? []), { repoRev, sentMs }])
    }
  }
  // The first write warms the new process up (its first signatures, resolutions, connections).
  await writeEach()
  await until(() => good.quiet.delivered.length > 0 && bad[2]!.holding() > 0, RELAY_TIMEOUT_MS)
  for (let i = 0; i < WRITES; i++) {
    await writeEach()
    await new Promise((r) => setTimeout(r, 50))
  }
  t.same(
    statuses.filter((s) => s !== 200),
    [],
    'every write was acknowledged',
  )

  /** Whether `s` has every write of its space, delivered exactly once and in order. */
  const complete = (s: Syncer) =>
    s.delivered.map((n) => n.repoRev).join() ===
    written
      .get(s.space)!
      .map((w) => w.repoRev)
      .join()
  /** Checks `s`'s notifications: the writes in order, a gap-free prevSpaceRev chain. */
  const inOrder = (t: Pick<typeof tap, 'same' | 'fail'>, s: Syncer) => {
    t.same(
      s.delivered.map((n) => n.repoRev),
      written.get(s.space)!.map((w) => w.repoRev),
      `${s.name}: every write, once, in order`,
    )
    s.delivered.forEach((n, i) => {
      if (i > 0 && n.prevSpaceRev !== s.delivered[i - 1]!.spaceRev)
        t.fail(`${s.name}: notification ${i} does not link to the one before`)
    })
  }
  const hangs = bad[2]!
  /** When `s` got its last notification. */
  const lastMs = (s: Syncer) => s.delivered[s.delivered.length - 1]?.atMs ?? Infinity
  /** The longest time from a write after the first to `s` getting it. */
  const slowestMs = (s: Syncer) =>
    Math.max(...s.delivered.slice(1).map((n, i) => n.atMs - written.get(s.space)![i + 1]!.sentMs))

  t.test('the good syncers of the other spaces, while a syncer hangs', async (t) => {
    t.ok(
      await until(() => complete(good.mixed) && complete(good.quiet), 2 * RELAY_TIMEOUT_MS),
      'both got every write',
    )
    t.ok(
      lastMs(good.mixed) < hangs.firstReleaseMs() && lastMs(good.quiet) < hangs.firstReleaseMs(),
      'before the relay gave up on its first delivery to the hanging syncer',
    )
    t.ok(
      bad[0]!.failures() > 0 && bad[1]!.failures() > 0,
      'the syncers beside the good one have failed meanwhile',
    )
    t.same(
      bad.map((s) => s.delivered.length),
      [0, 0, 0],
      'none of the bad syncers got anything',
    )
    for (const s of [good.mixed, good.quiet]) {
      inOrder(t, s)
      const ms = slowestMs(s)
      t.ok(ms < RELAY_TIMEOUT_MS, `${s.name}: the slowest took ${ms} ms, under the relay timeout`)
    }
  })

  t.test('the good syncer beside the hanging one', async (t) => {
    t.ok(await until(() => complete(good.hanging), 3 * RELAY_TIMEOUT_MS), 'it got every write')
    inOrder(t, good.hanging)
    const ms = slowestMs(good.hanging)
    t.ok(
      lastMs(good.hanging) < hangs.firstReleaseMs(),
      'before the relay gave up on its first delivery to the hanging syncer',
    )
    t.ok(ms < RELAY_TIMEOUT_MS, `the slowest took ${ms} ms, under the relay timeout`)
  })

  t.test('the bad syncers, once they recover, get everything in order', async (t) => {
    for (const s of bad) s.heal()
    t.ok(
      await until(() => bad.every(complete), 6 * RELAY_TIMEOUT_MS),
      'each got every write after its retries',
    )
    for (const s of bad) inOrder(t, s)
    for (const s of Object.values(good)) t.ok(complete(s), `${s.name} got nothing twice`)
  })
})

// Two Gatehouse servers on one PostgreSQL database, as an operator runs them behind a load
// balancer: a space's deliveries are leased to one of them at a time, a dead holder's lease is taken
// over once it expires, and what one server changes is seen by the other within the documented
// bounds (docs/operating.md#several-processes-on-one-postgresql). SQLite is one process per
// database: there a claim is always granted and the lease table stays empty.
import t from 'tap'
import { eventsAfter } from '../../src/spaces/events.js'
import { Leases } from '../../src/db/leases.js'
import { TestArbiter } from '../_helpers/arbiter.js'
import { testPostgresUrl } from '../_helpers/db.js'
import { decodeToken, spaceWorld, type SpaceWorld } from '../_helpers/spaces.js'
import { notifier, registeredSyncer, tidAt } from '../_helpers/sync.js'
import {
  delegationToken,
  exchangeHeaders,
  newHolderKey,
  presentHeaders,
} from '../_helpers/tokens.js'
import { Keypair } from '../../src/crypto/keypair.js'
import { getHostedSpace } from '../../src/spaces/hosted.js'
import type { WebIdentity } from '../_helpers/identities.js'

const LEASE_SEC = 5
const PG_ONLY = {
  skip: testPostgresUrl() ? false : 'PostgreSQL leg only (GATEHOUSE_TEST_DATABASE_URL)',
}
const env = { GATEHOUSE_LEASE_SEC: String(LEASE_SEC), GATEHOUSE_CONFIG_CACHE_MS: '1000' }

/** A world on A, and B: a second server on A's database and data dir (so the same KEK). */
async function twoServers(
  t: Parameters<typeof spaceWorld>[0],
): Promise<{ w: SpaceWorld; b: TestArbiter }> {
  const w = await spaceWorld(t, { env })
  const b = await TestArbiter.create(t, { database: w.a.database, dataDir: w.a.dataDir, env })
  b.clock.set(w.a.clock.nowMs())
  return { w, b }
}

/** Moves both servers' clocks (hosts agree on the time). */
const advance = (w: SpaceWorld, b: TestArbiter, ms: number) => {
  w.a.clock.advance(ms)
  b.clock.set(w.a.clock.nowMs())
}

/** The spaceRevs of the notifyWrites the syncer received, in arrival order. */
const received = (svc: { calls: { path: string; body: unknown }[] }) =>
  svc.calls
    .filter((c) => c.path === '/xrpc/com.atproto.space.notifyWrite')
    .map((c) => (c.body as { spaceRev: string }).spaceRev)

/** `n` notifyWrites through A; returns the space's events' spaceRevs so far, in order. */
async function write(
  t: Parameters<typeof spaceWorld>[0] & { equal(a: unknown, b: unknown, m: string): unknown },
  w: SpaceWorld,
  n: number,
  writer: WebIdentity,
): Promise<string[]> {
  const notify = notifier(w)
  for (let i = 0; i < n; i++) {
    w.a.clock.advance(1)
    const res = await notify(writer, { repoRev: tidAt(w.a.clock.nowMs()) })
    t.equal(res.status, 200, 'notifyWrite accepted')
  }
  return (await eventsAfter(w.a.ctx.db.hot, w.space, '', 1000)).map((e) => e.spaceRev)
}

t.test(
  'SQLite: one process per database, every claim granted without a lease row',
  { skip: testPostgresUrl() ? 'SQLite only' : false },
  async (t) => {
    const w = await spaceWorld(t, { env })
    const other = new Leases(w.a.ctx.db, w.a.clock, 5000)
    t.same([...(await other.claim(['relay:x']))], ['relay:x'])
    t.equal(await w.a.ctx.db.prisma.lease.count(), 0)
  },
)

t.test('PostgreSQL: a space is delivered by one server at a time', PG_ONLY, async (t) => {
  const { w, b } = await twoServers(t)
  const writer = w.user('writer')
  await w.a.ctx.spaces.putMember(w.space, writer.did, { read: true, write: true })
  const { svc } = await registeredSyncer(t, w, () => 200)

  // Both relays pass at once, again and again, while writes arrive: every event reaches the
  // syncer once, in order — never twice from two servers.
  let revs: string[] = []
  for (let round = 0; round < 8; round++) {
    revs = await write(t, w, 3, writer)
    b.clock.set(w.a.clock.nowMs())
    await Promise.all([w.a.ctx.relay.runOnce(), b.ctx.relay.runOnce(), b.ctx.relay.runOnce()])
  }
  await Promise.all([w.a.ctx.relay.runOnce(), b.ctx.relay.runOnce()])
  t.same(received(svc), revs, 'each event once, in spaceRev order')
  t.equal(await w.a.ctx.db.prisma.lease.count(), 0, 'leases released when the work is done')
})

t.test(
  'PostgreSQL: a dead holder’s space is taken over when its lease expires',
  PG_ONLY,
  async (t) => {
    const { w, b } = await twoServers(t)
    const writer = w.user('writer')
    await w.a.ctx.spaces.putMember(w.space, writer.did, { read: true, write: true })
    const { svc } = await registeredSyncer(t, w, () => 200)
    const revs = await write(t, w, 4, writer)
    b.clock.set(w.a.clock.nowMs())

    // A process that claimed the space and died (nothing renews or releases its lease).
    const dead = new Leases(w.a.ctx.db, w.a.clock, LEASE_SEC * 1000)
    t.same([...(await dead.claim([`relay:${w.space}`]))], [`relay:${w.space}`])
    t.same([...(await dead.claim([`relay:${w.space}`]))], [`relay:${w.space}`], 'its own to renew')
    t.equal(await b.ctx.relay.runOnce(), 0, 'held: B leaves the space alone')
    t.same(received(svc), [])

    advance(w, b, LEASE_SEC * 1000 - 1)
    t.equal(await b.ctx.relay.runOnce(), 0, 'not yet expired')
    advance(w, b, 1)
    t.equal(await b.ctx.relay.runOnce(), 4, 'expired: B takes the space over')
    t.same(received(svc), revs)
    t.same([...(await dead.renew([`relay:${w.space}`]))], [], 'the old holder has lost it')
    const cursor = (await w.a.ctx.db.prisma.notifyRegistration.findFirstOrThrow()).cursor
    t.equal(cursor, revs.at(-1))
  },
)

t.test(
  'PostgreSQL: a holder whose lease ran out mid-pass sends no more and moves no cursor',
  PG_ONLY,
  async (t) => {
    const { w, b } = await twoServers(t)
    const writer = w.user('writer')
    await w.a.ctx.spaces.putMember(w.space, writer.did, { read: true, write: true })
    const thief = new Leases(w.a.ctx.db, w.a.clock, LEASE_SEC * 1000)
    let theft: Promise<Set<string>> | undefined
    // While A sends, time passes beyond its lease (a stalled process) and another takes the space.
    const { svc } = await registeredSyncer(t, w, () => {
      if (!theft) {
        advance(w, b, LEASE_SEC * 1000)
        theft = thief.claim([`relay:${w.space}`])
      }
      return 200
    })
    const revs = await write(t, w, 2, writer)
    t.equal(await w.a.ctx.relay.runOnce(), 1, 'A stopped once its lease had run out')
    t.same([...(await theft!)], [`relay:${w.space}`], 'the space was taken')
    t.same(received(svc), revs.slice(0, 1), 'the rest is left to the new holder, not sent twice')
    const cursor = (await w.a.ctx.db.prisma.notifyRegistration.findFirstOrThrow()).cursor
    t.equal(cursor, null, 'A wrote no cursor: the space is the other holder’s now')
    t.match(w.a.logs.text(), /relay lease lost before its cursors were written/)
  },
)

t.test('PostgreSQL: spaces another process holds do not crowd out the rest', PG_ONLY, async (t) => {
  // One delivery slot: a pass reads 32 rows of each kind of work.
  const w = await spaceWorld(t, { env: { ...env, GATEHOUSE_RELAY_CONCURRENCY: '1' } })
  const writer = w.user('writer')
  await w.a.ctx.spaces.putMember(w.space, writer.did, { read: true, write: true })
  const { svc } = await registeredSyncer(t, w, () => 200)
  const revs = await write(t, w, 1, writer)
  // A dead process holds a space with more (and older) due lanes than one pass reads.
  const held = `${w.space}-held`
  const dead = new Leases(w.a.ctx.db, w.a.clock, LEASE_SEC * 1000)
  await dead.claim([`relay:${held}`])
  const now = w.a.clock.nowMs()
  await w.a.ctx.db.prisma.notifyRegistration.createMany({
    data: Array.from({ length: 40 }, (_, i) => ({
      space: held,
      service: `did:web:syncer${i}.test#atproto_space_syncer`,
      endpoint: 'https://syncer.invalid',
      expiresAt: new Date(now + 86_400_000),
      createdAt: new Date(now - 60_000),
      nextAttemptAt: new Date(now - 60_000),
    })),
  })
  t.equal(await w.a.ctx.relay.runOnce(), 1, 'the free space is delivered at once')
  t.same(received(svc), revs)
})

t.test('PostgreSQL: claims of one set of names in any order never deadlock', PG_ONLY, async (t) => {
  const w = await spaceWorld(t, { env })
  const db = w.a.ctx.db
  const one = new Leases(db, w.a.clock, LEASE_SEC * 1000)
  const two = new Leases(db, w.a.clock, LEASE_SEC * 1000)
  const names = Array.from({ length: 26 }, (_, i) => `relay:${String(i).padStart(2, '0')}`)
  // A third party's uncommitted row in the middle of the names holds both claims there, so each has
  // taken what comes before it in its own order when they go on.
  let rollback = () => {}
  let inserted = () => {}
  const held = new Promise<void>((r) => (inserted = r))
  const blocker = db.prisma
    .$transaction(
      async (tx) => {
        await tx.$executeRawUnsafe(
          `INSERT INTO lease (name, holder, expires_at) VALUES ($1, 'blocker', $2)`,
          names[13],
          w.a.clock.now(),
        )
        const release = new Promise<void>((r) => (rollback = r))
        inserted()
        await release
        throw new Error('rolled back')
      },
      { timeout: 30_000 },
    )
    .catch(() => {})
  await held
  const claims = Promise.allSettled([one.claim(names), two.claim([...names].reverse())])
  while ((await waitingOnLocks(db)) < 2);
  rollback()
  await blocker
  const settled = await claims
  t.same(
    settled.map((r) => r.status),
    ['fulfilled', 'fulfilled'],
    'both claims answered',
  )
  const granted = settled.flatMap((r) => (r.status === 'fulfilled' ? [...r.value] : []))
  t.same(granted.sort(), names, 'each name to exactly one')
})

/** Statements on the lease table waiting for a row lock. */
async function waitingOnLocks(db: SpaceWorld['a']['ctx']['db']): Promise<number> {
  const rows = await db.prisma.$queryRawUnsafe<{ n: bigint }[]>(
    `SELECT count(*) AS n FROM pg_stat_activity
      WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO lease%'`,
  )
  return Number(rows[0]!.n)
}

t.test('PostgreSQL: the janitor runs one pass at a time across servers', PG_ONLY, async (t) => {
  const { w, b } = await twoServers(t)
  const other = new Leases(w.a.ctx.db, w.a.clock, LEASE_SEC * 1000)
  await other.claim(['janitor'])
  t.equal(await b.ctx.janitor.runAlone(), undefined, 'another pass holds the lease')
  await other.release(['janitor'])
  t.type(await b.ctx.janitor.runAlone(), 'object', 'free: B runs its pass')
  t.equal(await w.a.ctx.db.prisma.lease.count(), 0, 'and releases the lease')
})

t.test('what one server changes, the other honours within its bound', async (t) => {
  // On SQLite too: two contexts on one file are what a CLI beside `gatehouse serve` is.
  const { w, b } = await twoServers(t)
  const member = w.user('member')
  await w.a.ctx.spaces.putMember(w.space, member.did, { read: true, write: false })
  const exchangeOnB = async () => {
    const holder = newHolderKey()
    const token = delegationToken({ user: member, space: w.space, nowSec: b.clock.nowSec() })
    const res = await b.fetch('/xrpc/com.atproto.space.getSpaceCredential', {
      method: 'POST',
      headers: { ...exchangeHeaders(token, holder), 'content-type': 'application/json' },
      body: JSON.stringify({ space: w.space }),
    })
    return { status: res.status, body: (await res.json()) as Record<string, string>, holder }
  }

  // Revocation: refused by B at once (checked in the database on every request).
  const issued = await w.getCredential(member)
  t.equal(issued.status, 200)
  const jti = decodeToken(String(issued.body.credential)).payload.jti as string
  const presentOnB = async (credential: string, holder: Keypair) => {
    const q = new URLSearchParams({ space: w.space })
    const res = await b.fetch(`/xrpc/com.atproto.simplespace.getSpace?${q}`, {
      headers: presentHeaders(credential, w.authority.did, holder),
    })
    return res.status
  }
  t.equal(await presentOnB(String(issued.body.credential), issued.holder), 200)
  const config = await getHostedSpace(w.a.ctx, w.space)
  await w.a.ctx.credentials.revoke(config, { jtis: [jti] })
  t.equal(await presentOnB(String(issued.body.credential), issued.holder), 401, 'revoked on B')

  // Member removal: B refuses the next exchange at once (the member list is not cached).
  t.equal((await exchangeOnB()).status, 200)
  await w.a.ctx.spaces.removeMember(w.space, member.did)
  const refused = await exchangeOnB()
  t.same(
    [refused.status, refused.body.error],
    [400, 'UserNotAuthorized'],
    'removed on A, refused on B',
  )

  // A signing key rotated by A: B signs with the new one once its cache bound has passed.
  const next = Keypair.generate('secp256k1')
  await w.a.ctx.db.transact(async (tx) => {
    await w.a.ctx.authorities.addKeys(w.authority.did, { atproto: next }, 'pending', tx)
    await w.a.ctx.authorities.promotePending(w.authority.did, tx)
  })
  w.a.ctx.authorities.forget(w.authority.did)
  const keyOnB = async () => (await b.ctx.authorities.key(w.authority.did, 'atproto'))!.did()
  t.equal(await keyOnB(), w.authority.key.did(), 'B still trusts what it read within the bound')
  b.clock.advance(1000)
  t.equal(await keyOnB(), next.did(), 'after GATEHOUSE_CONFIG_CACHE_MS, the rotated key')
})

/**
 * notifyWrite intake, the writer set and listRepos, registerNotify/unregisterNotify, over HTTP with
 * real writer identities: the contract's order of checks and statuses (400 before auth for a bad
 * body, 403 for spoofing and unauthorized writers, FutureRev), stale and duplicate revs ignored,
 * spaceRev strictly increasing with a gap-free prevSpaceRev chain, and the cursor semantics.
 */
import t from 'tap'
import { spaceWorld, type SpaceWorld } from '../_helpers/spaces.js'
import { HASH, notifier, tidAt } from '../_helpers/sync.js'
import { presentHeaders } from '../_helpers/tokens.js'
import type { Keypair } from '../../src/crypto/keypair.js'

const LXM = 'com.atproto.space.notifyWrite'

async function setup(t: Parameters<typeof spaceWorld>[0]) {
  const w = await spaceWorld(t)
  const writers = await Promise.all(
    ['w1', 'w2', 'w3'].map(async (n) => {
      const u = w.user(n)
      await w.a.ctx.spaces.putMember(w.space, u.did, { read: true, write: true })
      return u
    }),
  )
  const reader = w.user('reader')
  await w.a.ctx.spaces.putMember(w.space, reader.did, { read: true, write: false })
  const cred = await w.getCredential(reader)
  const asReader = async (
    nsid: string,
    payload: Record<string, string>,
    method: 'GET' | 'POST' = 'GET',
  ) => {
    const headers = presentHeaders(cred.body.credential as string, w.authority.did, cred.holder)
    const res =
      method === 'GET'
        ? await w.a.fetch(`/xrpc/${nsid}?${new URLSearchParams(payload)}`, { headers })
        : await w.a.fetch(`/xrpc/${nsid}`, {
            method: 'POST',
            headers: { ...headers, 'content-type': 'application/json' },
            body: JSON.stringify(payload),
          })
    const text = await res.text()
    return {
      status: res.status,
      body: (text ? JSON.parse(text) : undefined) as Record<string, any> | undefined,
    }
  }
  return { w, writers, reader, notify: notifier(w), asReader }
}

/** registerNotify for a new syncer `name` (resolvable, never reached), with `cred` as its holder presents it. */
async function registerSyncer(
  w: SpaceWorld,
  cred: { body: Record<string, unknown>; holder: Keypair },
  space: string,
  name: string,
) {
  const syncer = w.web.create(name, {
    services: {
      atproto_space_syncer: { type: 'AtprotoSpaceSyncer', endpoint: 'http://127.0.0.1:9/' },
    },
  })
  const res = await w.a.fetch('/xrpc/com.atproto.space.registerNotify', {
    method: 'POST',
    headers: {
      ...presentHeaders(cred.body.credential as string, w.authority.did, cred.holder),
      'content-type': 'application/json',
    },
    body: JSON.stringify({ space, service: `${syncer.did}#atproto_space_syncer` }),
  })
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

t.test('an accepted write is in listRepos with its repoRev, hash and a spaceRev', async (t) => {
  const { w, writers, notify, asReader } = await setup(t)
  const rev = tidAt(w.a.clock.nowMs())
  t.same(await notify(writers[0]!, { repoRev: rev }), { status: 200, body: undefined })
  const list = await asReader('com.atproto.space.listRepos', { space: w.space })
  t.equal(list.status, 200)
  t.match(list.body, { repos: [{ did: writers[0]!.did, repoRev: rev, hash: HASH }] })
  t.equal(list.body!.cursor, list.body!.repos[0].spaceRev)
  t.equal(list.body!.repos[0].spaceRev.length, 13)
})

t.test(
  'both audience forms are accepted; spoofing and unauthorized writers are refused',
  async (t) => {
    const { w, writers, reader, notify } = await setup(t)
    const now = w.a.clock.nowMs()
    t.equal(
      (await notify(writers[0]!, { repoRev: tidAt(now) }, { aud: w.authority.did })).status,
      200,
      'bare authority DID',
    )
    t.match(await notify(writers[1]!, { repoRev: tidAt(now) }, { iss: writers[0]! }), {
      status: 403,
      body: { error: 'Forbidden', message: 'notifyWrite iss does not match claimed writer' },
    })
    t.match(await notify(writers[1]!, { repoRev: tidAt(now) }, { aud: writers[2]!.did }), {
      status: 403,
      body: { error: 'Forbidden', message: 'notifyWrite aud does not match the space authority' },
    })
    t.match(
      await notify(
        writers[1]!,
        { repoRev: tidAt(now) },
        { lxm: 'com.atproto.space.registerNotify' },
      ),
      { status: 401, body: { error: 'BadJwtLexiconMethod' } },
    )
    t.match(await notify(w.user('outsider'), { repoRev: tidAt(now) }), {
      status: 403,
      body: { message: 'notifyWrite writer is not authorized' },
    })
    t.match(
      await notify(reader, { repoRev: tidAt(now) }),
      { status: 403, body: { message: 'notifyWrite writer is not authorized' } },
      'a member with write:false',
    )
  },
)

t.test('a malformed body is a 400 before any auth check', async (t) => {
  const { w } = await setup(t)
  const res = await w.a.fetch(`/xrpc/${LXM}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      space: w.space,
      repo: 'did:web:x.example',
      repoRev: 'not-a-tid',
      hash: HASH,
    }),
  })
  t.equal(res.status, 400)
  t.match(await res.json(), { error: 'InvalidRequest' })
})

t.test('FutureRev beyond 5 minutes; unknown and deleted spaces', async (t) => {
  const { w, writers, notify } = await setup(t)
  const now = w.a.clock.nowMs()
  t.equal(
    (await notify(writers[0]!, { repoRev: tidAt(now + 60_000) })).status,
    200,
    '+1 min is fine',
  )
  t.match(await notify(writers[1]!, { repoRev: tidAt(now + 10 * 60_000) }), {
    status: 400,
    body: { error: 'FutureRev' },
  })
  t.match(
    await notify(writers[1]!, { repoRev: tidAt(now), space: w.space.replace(/[^/]+$/, 'none') }),
    { status: 400, body: { error: 'SpaceNotFound' } },
  )
  await w.a.ctx.spaces.delete(w.space)
  t.match(await notify(writers[1]!, { repoRev: tidAt(now) }), {
    status: 400,
    body: { error: 'SpaceNotFound' },
  })
})

t.test('stale and duplicate revs change nothing', async (t) => {
  const { w, writers, notify } = await setup(t)
  const now = w.a.clock.nowMs()
  await notify(writers[0]!, { repoRev: tidAt(now) })
  const events = () => w.a.ctx.db.prisma.spaceEvent.count({ where: { space: w.space } })
  t.equal(await events(), 1)
  t.equal((await notify(writers[0]!, { repoRev: tidAt(now) })).status, 200, 'duplicate: 200')
  t.equal((await notify(writers[0]!, { repoRev: tidAt(now - 1000) })).status, 200, 'stale: 200')
  t.equal(await events(), 1, 'nothing recorded')
  const row = await w.a.ctx.db.prisma.spaceWriter.findFirst({ where: { space: w.space } })
  t.equal(row?.repoRev, tidAt(now), 'no rollback')
})

t.test(
  'spaceRev strictly increases and prevSpaceRev chains every event, even under concurrency',
  async (t) => {
    const { w, writers, notify } = await setup(t)
    const base = w.a.clock.nowMs()
    await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        notify(writers[i % 3]!, { repoRev: tidAt(base + i, i % 3) }),
      ),
    )
    const events = await w.a.ctx.db.prisma.spaceEvent.findMany({
      where: { space: w.space },
      orderBy: { spaceRev: 'asc' },
    })
    t.ok(events.length >= 3)
    events.forEach((e, i) =>
      t.equal(
        e.prevSpaceRev,
        i === 0 ? null : events[i - 1]!.spaceRev,
        `event ${i} links to the one before`,
      ),
    )
    const writerRows = await w.a.ctx.db.prisma.spaceWriter.findMany({ where: { space: w.space } })
    for (const r of writerRows)
      t.ok(
        events.some((e) => e.spaceRev === r.spaceRev && e.repo === r.did),
        'each writer sits at its last event',
      )
  },
)

t.test(
  'listRepos: ascending spaceRev, exclusive cursor, a rewrite moves later, empty page has no cursor',
  async (t) => {
    const { w, writers, notify, asReader } = await setup(t)
    const now = w.a.clock.nowMs()
    for (const [i, wr] of writers.entries()) await notify(wr, { repoRev: tidAt(now + i) })
    const page1 = await asReader('com.atproto.space.listRepos', { space: w.space, limit: '2' })
    t.same(
      page1.body!.repos.map((r: { did: string }) => r.did),
      [writers[0]!.did, writers[1]!.did],
    )
    await notify(writers[0]!, { repoRev: tidAt(now + 100) })
    const page2 = await asReader('com.atproto.space.listRepos', {
      space: w.space,
      limit: '2',
      cursor: page1.body!.cursor,
    })
    t.same(
      page2.body!.repos.map((r: { did: string }) => r.did),
      [writers[2]!.did, writers[0]!.did],
      'w1 reappears after it wrote again',
    )
    const page3 = await asReader('com.atproto.space.listRepos', {
      space: w.space,
      cursor: page2.body!.cursor,
    })
    t.same(page3.body, { repos: [] }, 'no cursor on an empty page')
    t.match(await asReader('com.atproto.space.listRepos', { space: w.space, cursor: 'bogus' }), {
      status: 400,
      body: { error: 'InvalidRequest' },
    })
  },
)

t.test(
  'registerNotify resolves the service, lasts 24 h, renews; unregisterNotify is idempotent',
  async (t) => {
    const { w, asReader } = await setup(t)
    const syncer = w.web.create('syncer', {
      services: {
        atproto_space_syncer: { type: 'AtprotoSpaceSyncer', endpoint: 'http://127.0.0.1:9/' },
      },
    })
    const service = `${syncer.did}#atproto_space_syncer`
    const first = await asReader(
      'com.atproto.space.registerNotify',
      { space: w.space, service },
      'POST',
    )
    t.same(first, {
      status: 200,
      body: { expiresAt: new Date(w.a.clock.nowMs() + 86_400_000).toISOString() },
    })
    w.a.clock.advance(300_000)
    const again = await asReader(
      'com.atproto.space.registerNotify',
      { space: w.space, service },
      'POST',
    )
    t.equal(
      again.body!.expiresAt,
      new Date(w.a.clock.nowMs() + 86_400_000).toISOString(),
      'renewed',
    )
    t.equal(await w.a.ctx.db.prisma.notifyRegistration.count({ where: { space: w.space } }), 1)
    t.match(
      await asReader(
        'com.atproto.space.registerNotify',
        { space: w.space, service: `${syncer.did}#nothing` },
        'POST',
      ),
      { status: 400, body: { error: 'ServiceNotResolvable' } },
    )
    t.match(
      await asReader(
        'com.atproto.space.registerNotify',
        { space: w.space, service: 'did:web:localhost%3A1:ghost' },
        'POST',
      ),
      { status: 400, body: { error: 'ServiceNotResolvable' } },
    )
    t.same(
      await asReader('com.atproto.space.unregisterNotify', { space: w.space, service }, 'POST'),
      { status: 200, body: undefined },
    )
    t.same(
      await asReader(
        'com.atproto.space.unregisterNotify',
        { space: w.space, service: 'did:web:gone.example#x' },
        'POST',
      ),
      { status: 200, body: undefined },
      'no resolution, no error',
    )
    t.equal(await w.a.ctx.db.prisma.notifyRegistration.count({ where: { space: w.space } }), 0)
  },
)

t.test(
  'registerNotify: a space holds at most GATEHOUSE_REGISTRATIONS_PER_SPACE_MAX live registrations; renewals always fit',
  async (t) => {
    // As reported: a non-member holding a credential for a public-read space registers lane after lane.
    const w = await spaceWorld(t, {
      policy: {
        readPolicy: { kind: 'public' },
        writePolicy: { kind: 'member-list' },
        appAccess: { kind: 'open' },
      },
      env: { GATEHOUSE_REGISTRATIONS_PER_SPACE_MAX: '3' },
    })
    const stranger = w.user('stranger')
    const cred = await w.getCredential(stranger)
    t.equal(cred.status, 200, 'a non-member gets a credential for a public-read space')
    const register = (name: string) => registerSyncer(w, cred, w.space, name)
    const live = () =>
      w.a.ctx.db.prisma.notifyRegistration.count({
        where: { space: w.space, expiresAt: { gt: w.a.clock.now() } },
      })
    for (const n of ['s1', 's2', 's3']) t.equal((await register(n)).status, 200, `${n} registered`)
    t.match(await register('s4'), {
      status: 400,
      body: { error: 'RegistrationLimitExceeded', message: /3 live notification registrations/ },
    })
    t.equal(await live(), 3, 'the refused one was not stored')
    w.a.clock.advance(60_000)
    t.equal((await register('s2')).status, 200, 'renewing at the cap is never refused')
    t.equal(await w.a.ctx.db.prisma.notifyRegistration.count({ where: { space: w.space } }), 3)

    await w.a.ctx.notify.unregister(w.space, `${w.user('s1').did}#atproto_space_syncer`)
    t.equal((await register('s4')).status, 200, 'an unregistration frees a place')
    t.equal((await register('s5')).status, 400, 'and only one')

    // s3 lapses (s2 and s4 were registered a minute later): a lapsed registration takes no place,
    // and reviving it counts as new.
    w.a.clock.advance(86_400_000 - 30_000)
    t.equal(await live(), 2)
    const again = await w.getCredential(stranger)
    cred.body = again.body
    cred.holder = again.holder
    t.equal((await register('s5')).status, 200, 's5 takes the place s3 left')
    t.match(
      await register('s3'),
      { status: 400, body: { error: 'RegistrationLimitExceeded' } },
      'reviving a lapsed registration counts as a new one',
    )
    t.equal(
      (await w.a.ctx.janitor.run()).registrations,
      1,
      'the janitor deletes the lapsed one (s3)',
    )
    t.equal(await w.a.ctx.db.prisma.notifyRegistration.count({ where: { space: w.space } }), 3)
  },
)

t.test(
  'registerNotify: one user holds at most GATEHOUSE_REGISTRATIONS_PER_USER_MAX live registrations, across spaces',
  async (t) => {
    const PUBLIC = {
      readPolicy: { kind: 'public' as const },
      writePolicy: { kind: 'member-list' as const },
      appAccess: { kind: 'open' as const },
    }
    const w = await spaceWorld(t, {
      policy: PUBLIC,
      env: { GATEHOUSE_REGISTRATIONS_PER_USER_MAX: '2' },
    })
    const other = await w.a.ctx.spaces.create({
      authority: w.authority.did,
      spaceType: 'com.example.forum',
      skey: 'second',
      ...PUBLIC,
    })
    const register = async (who: string, space: string, name: string) =>
      registerSyncer(w, await w.getCredential(w.user(who), { space }), space, name)
    t.equal((await register('stranger', w.space, 'a1')).status, 200)
    t.equal((await register('stranger', other.uri, 'b1')).status, 200, 'on another space')
    t.match(
      await register('stranger', w.space, 'a2'),
      {
        status: 400,
        body: {
          error: 'RegistrationLimitExceeded',
          message: /this user's credentials already hold 2/,
        },
      },
      'a third, with a fresh credential, is refused',
    )
    t.equal((await register('stranger', w.space, 'a1')).status, 200, 'a renewal still fits')
    t.equal((await register('someone', w.space, 'a3')).status, 200, 'others are not affected')
    const rows = await w.a.ctx.db.prisma.notifyRegistration.findMany({
      select: { registeredBy: true },
    })
    t.same(
      rows.map((r) => r.registeredBy).sort(),
      [w.user('someone').did, w.user('stranger').did, w.user('stranger').did].sort(),
      'each registration records its registrant',
    )
  },
)

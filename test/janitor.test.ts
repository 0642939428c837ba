/**
 * The janitor keeps storage bounded, each table on its own rule, driven by the manual clock:
 * issued credentials some time after expiry, revocations at expiry, events once older than the retry
 * window and passed by every live lane, dead letters after their retention, lapsed registrations at
 * once. Runs on SQLite and, in the CI PostgreSQL leg, on PostgreSQL.
 */
import t from 'tap'
import { getHostedSpace } from '../src/spaces/hosted.js'
import { MockService } from './_helpers/services.js'
import { spaceWorld, type SpaceWorld } from './_helpers/spaces.js'
import { tidAt } from './_helpers/sync.js'

const HOUR = 3_600_000
const DAY = 24 * HOUR

async function syncer(t: Parameters<typeof spaceWorld>[0], w: SpaceWorld, name: string) {
  let status = 200
  const svc = await MockService.start(t, (_req, res) => svc.json(res, status, {}))
  const id = w.web.create(name, {
    services: { atproto_space_syncer: { type: 'AtprotoSpaceSyncer', endpoint: svc.origin } },
  })
  const service = `${id.did}#atproto_space_syncer`
  return {
    answer: (s: number) => (status = s),
    register: (ttlMs: number) =>
      w.a.ctx.notify.register(
        w.space,
        service,
        svc.origin,
        new Date(w.a.clock.nowMs() + ttlMs),
        id.did,
      ),
  }
}

t.test('each table shrinks on its own rule', async (t) => {
  const w = await spaceWorld(t, {
    env: {
      GATEHOUSE_CREDENTIAL_RETENTION_DAYS: '1',
      GATEHOUSE_DEAD_LETTER_RETENTION_DAYS: '2',
      GATEHOUSE_RELAY_RETRY_WINDOW_SEC: '3600',
    },
  })
  const db = w.a.ctx.db.prisma
  const counts = async () => ({
    credentials: await db.issuedCredential.count(),
    revoked: await db.revokedCredential.count(),
    events: await db.spaceEvent.count(),
    deadLetters: await db.deadLetter.count(),
    registrations: await db.notifyRegistration.count(),
  })
  const prune = () => w.a.ctx.janitor.run()

  const alice = w.user('alice')
  await w.a.ctx.spaces.putMember(w.space, alice.did, { read: true, write: true })
  for (let i = 0; i < 3; i++) t.equal((await w.getCredential(alice)).status, 200)
  // More than a batch of old credentials: the janitor deletes them in several.
  const old = new Date(w.a.clock.nowMs() - 3 * DAY)
  await db.issuedCredential.createMany({
    data: Array.from({ length: 2500 }, (_, i) => ({
      space: w.space,
      jti: `old-${i}`,
      userDid: alice.did,
      issuedAt: old,
      expiresAt: old,
    })),
  })
  const config = await getHostedSpace(w.a.ctx, w.space)
  await w.a.ctx.credentials.revoke(config, {
    jtis: [
      (
        await db.issuedCredential.findFirstOrThrow({
          where: { jti: { not: { startsWith: 'old-' } } },
        })
      ).jti,
    ],
  })

  const fine = await syncer(t, w, 'fine')
  const behind = await syncer(t, w, 'behind')
  const refuses = await syncer(t, w, 'refuses')
  const brief = await syncer(t, w, 'brief')
  await fine.register(30 * DAY)
  await behind.register(30 * DAY)
  await refuses.register(30 * DAY)
  await brief.register(HOUR)
  behind.answer(503)
  refuses.answer(400)
  for (let i = 0; i < 3; i++) {
    const repo = w.user(`writer-${i}`).did
    await w.a.ctx.notify.acceptWrite(w.space, {
      repo,
      repoRev: tidAt(w.a.clock.nowMs() + i),
      hash: new Uint8Array(32),
    })
  }
  await w.a.ctx.relay.runOnce()
  await w.a.ctx.db.prisma.revocationNotice.deleteMany()

  t.same(await counts(), {
    credentials: 2503,
    revoked: 1,
    events: 3,
    deadLetters: 3,
    registrations: 4,
  })
  t.match(await prune(), { credentials: 2500 }, 'credentials long expired go, in batches')
  t.same(await counts(), {
    credentials: 3,
    revoked: 1,
    events: 3,
    deadLetters: 3,
    registrations: 4,
  })

  w.a.clock.advance(HOUR + 1000)
  t.match(await prune(), { revoked: 1, registrations: 1, events: 0 })
  t.same(
    await counts(),
    { credentials: 3, revoked: 0, events: 3, deadLetters: 3, registrations: 3 },
    'revocations past expiry and the lapsed registration go; events wait for the lane behind',
  )
  // The lane behind reaches the end of the retry window: its events become dead letters.
  await w.a.ctx.relay.runOnce()
  t.match(await prune(), { events: 3 })
  t.same(await counts(), {
    credentials: 3,
    revoked: 0,
    events: 0,
    deadLetters: 6,
    registrations: 3,
  })

  w.a.clock.advance(DAY)
  t.match(await prune(), { credentials: 3 }, 'a day after expiry, the credentials')
  w.a.clock.advance(DAY + 1000)
  t.match(await prune(), { deadLetters: 6 }, 'two days on, the dead letters')
  t.same(await counts(), {
    credentials: 0,
    revoked: 0,
    events: 0,
    deadLetters: 0,
    registrations: 3,
  })

  // The chain goes on after its events are gone.
  const repo = w.user('writer-0').did
  const next = await w.a.ctx.notify.acceptWrite(w.space, {
    repo,
    repoRev: tidAt(w.a.clock.nowMs()),
    hash: new Uint8Array(32),
  })
  t.match(next, { status: 'accepted', prevSpaceRev: /^[2-7a-z]{13}$/ })
})

// The dashboard's chart data over REST, through the real HTTP server: credentials issued and
// refused per day (the credential tally), members over time (counted back through the member
// oplog, null where it was compacted), and notification deliveries per syncer (the delivery
// tally, pruned like the credential tally's rows); every day of the range, in order, zeros too.
import t, { type Test } from 'tap'
import { dayOf } from '../../src/spaces/tally.js'
import { MockService } from '../_helpers/services.js'
import { MEMBERS_ONLY, spaceRest, spaceWorld, type SpaceWorld } from '../_helpers/spaces.js'
import { tidAt } from '../_helpers/sync.js'

const DAY_MS = 86_400_000

/** GET `/stats/{kind}` of the world's space as a moderator (the least role). */
async function statsApi(t: Test, w: SpaceWorld, o: { space?: string } = {}) {
  const { api } = await spaceRest(t, w, o)
  return async (sub: string) => {
    const answer = await api('GET', `/stats${sub}`)
    if (answer.status >= 400)
      t.match(answer.body, { error: String, message: String }, `${sub}: a clear refusal`)
    return answer
  }
}

const days = (w: SpaceWorld, n: number) =>
  Array.from({ length: n }, (_, i) => dayOf(w.a.clock.nowMs() - (n - 1 - i) * DAY_MS))

t.test('credentials issued and refused per day, every day of the range', async (t) => {
  const w = await spaceWorld(t)
  const reader = w.user('reader')
  await w.a.ctx.spaces.putMember(w.space, reader.did, { read: true, write: false })
  t.equal((await w.getCredential(reader)).status, 200)
  t.equal((await w.getCredential(reader)).status, 200)
  t.equal((await w.getCredential(w.user('nobody'))).status, 400)
  w.a.clock.advance(2 * DAY_MS)
  t.equal((await w.getCredential(reader)).status, 200)
  await w.a.ctx.tally.flush()
  const api = await statsApi(t, w)
  const [d0, d1, d2, d3, d4] = days(w, 5)
  t.same((await api('/credentials?days=5')).body, {
    days: [
      { day: d0, issued: 0, refused: 0 },
      { day: d1, issued: 0, refused: 0 },
      { day: d2, issued: 2, refused: 1 },
      { day: d3, issued: 0, refused: 0 },
      { day: d4, issued: 1, refused: 0 },
    ],
  })
  const month = (await api('/credentials')).body.days
  t.equal(month.length, 30, '30 days by default')
  t.equal(month.at(-1).day, dayOf(w.a.clock.nowMs()), 'ending today')
  t.equal((await api('/credentials?days=90')).body.days.length, 90, 'at most 90')
  for (const bad of ['0', '91', 'many', '1.5'])
    t.match(await api(`/credentials?days=${bad}`), {
      status: 400,
      body: { error: 'InvalidRequest' },
    })

  // A day summarised into the audit log stays as long as the chart may show it.
  t.equal((await w.a.ctx.janitor.run()).credentialDays, 1, 'summarised')
  w.a.clock.advance(30 * DAY_MS)
  await w.a.ctx.janitor.run()
  t.match((await api('/credentials?days=40')).body.days[7], { day: d2, issued: 2, refused: 1 })
})

t.test('members at the end of each day, counted back through the oplog', async (t) => {
  const w = await spaceWorld(t)
  const put = (name: string, write = false) =>
    w.a.ctx.spaces.putMember(w.space, w.user(name).did, { read: true, write })
  await put('ann')
  await put('bob')
  await put('cat')
  await put('cat', true) // an update: no change in the count
  w.a.clock.advance(DAY_MS)
  await w.a.ctx.spaces.removeMember(w.space, w.user('bob').did)
  w.a.clock.advance(2 * DAY_MS)
  await put('dan')
  await put('eve')
  const api = await statsApi(t, w)
  const [before, d0, d1, d2, d3] = days(w, 5)
  t.same((await api('/members?days=5')).body, {
    days: [
      { day: before, members: 0, added: 0, removed: 0 },
      { day: d0, members: 3, added: 3, removed: 0 },
      { day: d1, members: 2, added: 0, removed: 1 },
      { day: d2, members: 2, added: 0, removed: 0 },
      { day: d3, members: 4, added: 2, removed: 0 },
    ],
  })

  // Compacting the first day's ops: what they decided is no longer known, the rest still is.
  await w.a.ctx.spaces.members.compact(w.space, new Date(Date.parse(`${d1}T00:00:00Z`)))
  t.same((await api('/members?days=5')).body.days, [
    { day: before, members: null, added: null, removed: null },
    { day: d0, members: 3, added: null, removed: null },
    { day: d1, members: 2, added: 0, removed: 1 },
    { day: d2, members: 2, added: 0, removed: 0 },
    { day: d3, members: 4, added: 2, removed: 0 },
  ])
})

t.test('deliveries and failures per syncer; pruned after the range', async (t) => {
  const w = await spaceWorld(t)
  const syncer = async (name: string, status: number) => {
    const svc = await MockService.start(t, (_req, res) => svc.json(res, status, {}))
    const id = w.web.create(name, {
      services: { atproto_space_syncer: { type: 'AtprotoSpaceSyncer', endpoint: svc.origin } },
    })
    const service = `${id.did}#atproto_space_syncer`
    const expires = new Date(w.a.clock.nowMs() + 2 * DAY_MS)
    await w.a.ctx.notify.register(w.space, service, svc.origin, expires, id.did)
    return service
  }
  const good = await syncer('good', 200)
  const down = await syncer('down', 503)
  for (const i of [1, 2])
    await w.a.ctx.notify.acceptWrite(w.space, {
      repo: w.user(`writer${i}`).did,
      repoRev: tidAt(w.a.clock.nowMs() + i),
      hash: new Uint8Array(32),
    })
  await w.a.ctx.relay.runOnce()
  await w.a.ctx.deliveries.flush()
  const api = await statsApi(t, w)
  const [yesterday, today] = days(w, 2)
  const bySyncer = [
    { service: down, delivered: 0, failed: 1 },
    { service: good, delivered: 2, failed: 0 },
  ].sort((a, b) => (a.service < b.service ? -1 : 1))
  t.same((await api('/deliveries?days=2')).body, {
    days: [
      { day: yesterday, delivered: 0, failed: 0, syncers: [] },
      { day: today, delivered: 2, failed: 1, syncers: bySyncer },
    ],
  })

  w.a.clock.advance(92 * DAY_MS)
  t.equal((await w.a.ctx.janitor.run()).deliveryDays, 2, 'a day’s rows go after 91 days')
  t.equal(await w.a.ctx.db.prisma.deliveryTally.count(), 0)
})

t.test('the space’s own checks: another space’s token is refused', async (t) => {
  const w = await spaceWorld(t)
  const other = await w.a.ctx.spaces.create({
    authority: w.authority.did,
    spaceType: 'com.example.forum',
    skey: 'elsewhere',
    ...MEMBERS_ONLY,
  })
  const api = await statsApi(t, w, { space: other.uri })
  for (const kind of ['credentials', 'members', 'deliveries'])
    t.equal((await api(`/${kind}`)).status, 403, kind)
})

// Replaying a dead letter over REST: a syncer that refused a notification for good gets it again
// once it is fixed; a refused replay keeps the letter; a letter whose event is pruned says so.
import t from 'tap'
import { MockService } from '../_helpers/services.js'
import { spaceRest, spaceWorld } from '../_helpers/spaces.js'
import { tidAt } from '../_helpers/sync.js'

t.test('a dead letter replayed: delivered, refused again, pruned, unknown', async (t) => {
  const w = await spaceWorld(t, { env: { GATEHOUSE_RELAY_RETRY_WINDOW_SEC: '3600' } })
  let status = 400
  const received: string[] = []
  const svc = await MockService.start(t, (req, res) => {
    received.push(req.path)
    svc.json(res, status, {})
  })
  const id = w.web.create('syncer', {
    services: { atproto_space_syncer: { type: 'AtprotoSpaceSyncer', endpoint: svc.origin } },
  })
  const expires = new Date(w.a.clock.nowMs() + 86_400_000)
  await w.a.ctx.notify.register(
    w.space,
    `${id.did}#atproto_space_syncer`,
    svc.origin,
    expires,
    id.did,
  )
  const write = (i: number) =>
    w.a.ctx.notify.acceptWrite(w.space, {
      repo: w.user(`writer${i}`).did,
      repoRev: tidAt(w.a.clock.nowMs() + i),
      hash: new Uint8Array(32),
    })
  await write(1)
  await w.a.ctx.relay.runOnce()
  t.equal(received.length, 1, 'the syncer refused the notification (400: for good)')

  const { api, owner } = await spaceRest(t, w)
  const letters = (await api('GET', '/dead-letters')).body.deadLetters
  t.match(letters, [{ kind: 'write', lastError: 'status 400', attempts: 1 }])
  const letter = letters[0].id as string

  t.match(await api('POST', `/dead-letters/${letter}/replay`), {
    status: 200,
    body: { delivered: false, error: 'status 400' },
  })
  t.match((await api('GET', '/dead-letters')).body.deadLetters, [{ id: letter, attempts: 2 }])

  status = 200
  t.same(await api('POST', `/dead-letters/${letter}/replay`), {
    status: 200,
    body: { delivered: true },
  })
  t.equal(received.length, 3, 'the replay reached the syncer')
  t.match(received.at(-1), /com\.atproto\.space\.notifyWrite$/)
  t.same((await api('GET', '/dead-letters')).body.deadLetters, [], 'a delivered letter goes')
  const replays = await w.a.ctx.audit.query({
    authority: w.authority.did,
    action: 'dead-letter.replay',
    limit: 10,
  })
  t.match(
    replays,
    [
      { actor: owner, door: 'rest', subject: letter, after: /"delivered":true/ },
      {
        actor: owner,
        door: 'rest',
        subject: letter,
        after: /"delivered":false,"error":"status 400"/,
      },
    ],
    'each replay is in the audit log',
  )

  t.match(await api('POST', '/dead-letters/nope/replay'), {
    status: 404,
    body: { error: 'NotFound' },
  })

  // A letter whose event the janitor has since pruned.
  status = 400
  await write(2)
  await w.a.ctx.relay.runOnce()
  const [second] = (await api('GET', '/dead-letters')).body.deadLetters
  w.a.clock.advance(3600_000 + 1000)
  t.match(await w.a.ctx.janitor.run(), { events: 2 })
  await write(3)
  await w.a.ctx.relay.runOnce()
  const page = await api('GET', '/dead-letters?limit=1')
  t.equal(page.body.deadLetters.length, 1)
  const rest = await api('GET', `/dead-letters?limit=5&cursor=${page.body.cursor}`)
  t.same(
    [...page.body.deadLetters, ...rest.body.deadLetters].map((d: { id: string }) => d.id).sort(),
    (await w.a.ctx.db.prisma.deadLetter.findMany()).map((d) => d.id).sort(),
    'dead letters page by cursor',
  )
  t.notOk(rest.body.cursor)
  t.match(await api('POST', `/dead-letters/${second.id}/replay`), {
    status: 409,
    body: { error: 'EventPruned' },
  })
})

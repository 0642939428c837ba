/**
 * Invites, join requests and bans through the real server: managers over the REST API, invitees
 * and requesters by service-auth calls from their apps (acceptInvite, requestJoin, getJoinRequest).
 * Every admission is an add in the member oplog and every ban a removal, like any other change;
 * expired, used-up and revoked invites, banned DIDs, closed spaces and eager requesters are refused.
 */
import t, { type Test } from 'tap'
import { runCli } from '../../src/cli.js'
import { loadConfig } from '../../src/config.js'
import { ROUTES } from '../../src/rest/routes.js'
import type { WebIdentity } from '../_helpers/identities.js'
import { MockService } from '../_helpers/services.js'
import { spaceWorld } from '../_helpers/spaces.js'
import { serviceJwt } from '../_helpers/tokens.js'

const enc = encodeURIComponent
const HOUR_MS = 3_600_000

interface Answer {
  status: number
  body: any
  headers: Headers
}

async function world(t: Test, env?: Record<string, string>) {
  const w = await spaceWorld(t, { env })
  const owner = w.user('owner')
  await w.a.ctx.managers.change(w.authority.did, owner.did, 'owner', 'operator')
  const { token } = await w.a.ctx.tokens.create({
    authority: w.authority.did,
    createdBy: owner.did,
    creatorRole: 'owner',
    name: 'admission',
    role: 'owner',
  })
  const spacePath = (space: string) =>
    `/api/v1/authorities/${enc(w.authority.did)}/spaces/${space.split('/space/')[1]}`

  /** A REST call as the owner; every 2xx answer checked against the schema its OpenAPI entry is made of. */
  const api = async (
    method: string,
    sub: string,
    body?: object,
    o: { space?: string; headers?: Record<string, string> } = {},
  ): Promise<Answer> => {
    const path = spacePath(o.space ?? w.space) + sub
    const res = await w.a.fetch(path, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body ? { 'content-type': 'application/json' } : {}),
        ...o.headers,
      },
      body: body ? JSON.stringify(body) : undefined,
    })
    const text = await res.text()
    const json = text ? JSON.parse(text) : undefined
    const route = ROUTES.find(
      (r) =>
        r.method === method &&
        new RegExp(`^/api/v1${r.path.replace(/\{\w+\}/g, '[^/]+')}$`).test(path.split('?')[0]!),
    )
    if (!route) throw new Error(`${method} ${path}: no such route`)
    if (res.status < 300 && route.response) {
      const checked = route.response.safeParse(json)
      if (!checked.success) throw new Error(`${method} ${path}: ${checked.error.message}`)
    }
    if (res.status >= 400 && (typeof json?.error !== 'string' || typeof json?.message !== 'string'))
      throw new Error(`${method} ${path}: refusal without {error, message}: ${text}`)
    return { status: res.status, body: json, headers: res.headers }
  }

  /** An XRPC call from `user`'s app: service auth signed by the user, addressed to Gatehouse. */
  const xrpc = async (
    user: WebIdentity,
    nsid: string,
    input: Record<string, string>,
    aud = w.a.ctx.identity.did,
  ): Promise<Answer> => {
    const jwt = serviceJwt({ iss: user, aud, lxm: nsid, nowSec: w.now() })
    const query = nsid.endsWith('getJoinRequest')
    const res = await w.a.fetch(`/xrpc/${nsid}${query ? `?${new URLSearchParams(input)}` : ''}`, {
      method: query ? 'GET' : 'POST',
      headers: {
        authorization: `Bearer ${jwt}`,
        ...(query ? {} : { 'content-type': 'application/json' }),
      },
      body: query ? undefined : JSON.stringify(input),
    })
    return { status: res.status, body: await res.json(), headers: res.headers }
  }
  const accept = (user: WebIdentity, code: string, aud?: string) =>
    xrpc(user, 'dev.gatehouse.space.acceptInvite', { code }, aud)
  const request = (user: WebIdentity, space = w.space, message?: string) =>
    xrpc(user, 'dev.gatehouse.space.requestJoin', { space, ...(message ? { message } : {}) })
  const mine = (user: WebIdentity, space = w.space) =>
    xrpc(user, 'dev.gatehouse.space.getJoinRequest', { space })

  const invite = async (body: object = {}, space?: string) => {
    const made = await api('POST', '/invites', body, { space })
    if (made.status !== 201) throw new Error(`invite: ${JSON.stringify(made.body)}`)
    return made.body as { id: string; code: string; link: string }
  }
  /** The member oplog, as a syncer reads it. */
  const ops = async (space = w.space) =>
    (await w.a.ctx.spaces.members.ops(space, undefined, 1000)).ops.map(
      ({ op, did, read, write }) => ({ op, did, read, write }),
    )
  return { ...w, owner, api, accept, request, mine, invite, ops }
}

t.test('an invite accepted by a service-auth call adds the member through the oplog', async (t) => {
  const w = await world(t)
  const alice = w.user('alice')
  const key = { headers: { 'idempotency-key': 'invite-1' } }
  const made = await w.api('POST', '/invites', { write: true, maxUses: 2 }, key)
  t.equal(made.status, 201)
  t.match(made.body, { read: true, write: true, maxUses: 2, uses: 0, usedBy: [] })
  t.equal(made.body.link, `${w.a.ctx.cfg.service.publicUrl}/join/${made.body.code}`)
  t.match(made.body.code, /^[a-z2-7]{32}$/, 'a code a command line takes as it is')
  const replay = await w.api('POST', '/invites', { write: true, maxUses: 2 }, key)
  t.equal(replay.headers.get('idempotent-replayed'), 'true')
  t.equal(replay.body.id, made.body.id, 'a repeat creates nothing')
  t.notOk('code' in replay.body || 'link' in replay.body, 'the code is never kept')

  t.match(await w.accept(alice, made.body.code, 'did:web:elsewhere.example'), {
    status: 403,
    body: { error: 'Forbidden' },
  })
  t.same(
    (await w.accept(alice, made.body.code.toUpperCase())).body,
    { space: w.space, read: true, write: true },
    'a code typed in capitals is the same code',
  )
  t.same(await w.ops(), [{ op: 'add', did: alice.did, read: true, write: true }])
  t.equal(
    (await w.accept(alice, made.body.code, w.authority.did)).status,
    200,
    'aud: the authority',
  )
  t.same(await w.ops(), [{ op: 'add', did: alice.did, read: true, write: true }], 'twice: no op')
  const listed = await w.api('GET', '/invites')
  t.match(listed.body.invites, [{ id: made.body.id, uses: 1, usedBy: [{ did: alice.did }] }])
  t.notOk('code' in listed.body.invites[0], 'a listing shows no code')
})

t.test('an invite expires, is used up, and is revoked', async (t) => {
  const w = await world(t)
  const [bob, carol, dave] = [w.user('bob'), w.user('carol'), w.user('dave')]
  const once = await w.invite({ maxUses: 1 })
  t.equal((await w.accept(bob, once.code)).status, 200)
  t.match(await w.accept(carol, once.code), { status: 400, body: { error: 'InviteExhausted' } })

  const soon = await w.invite({ maxUses: null, expiresAt: new Date(w.a.clock.nowMs() + HOUR_MS) })
  w.a.clock.advance(HOUR_MS)
  t.match(await w.accept(carol, soon.code), { status: 400, body: { error: 'InviteExpired' } })

  const revoked = await w.invite({ maxUses: null })
  t.equal((await w.api('POST', `/invites/${revoked.id}/revoke`)).status, 204)
  t.match(await w.accept(dave, revoked.code), { status: 400, body: { error: 'InviteRevoked' } })
  t.match(await w.api('POST', '/invites/nope/revoke'), {
    status: 404,
    body: { error: 'InviteNotFound' },
  })
  t.match(await w.accept(dave, 'no-such-code'), { status: 400, body: { error: 'InviteNotFound' } })
  t.match(await w.api('POST', '/invites', { expiresAt: '2020-01-01T00:00:00Z' }), {
    status: 400,
    body: { message: /future/ },
  })
  t.same(await w.ops(), [{ op: 'add', did: bob.did, read: true, write: false }])
})

t.test('two racing accepts of a single-use invite: one wins', async (t) => {
  const w = await world(t)
  const racers = ['r1', 'r2', 'r3'].map((n) => w.user(n))
  const { code, id } = await w.invite({ maxUses: 1 })
  const answers = await Promise.all(racers.map((r) => w.accept(r, code)))
  t.same(answers.map((a) => a.status).sort(), [200, 400, 400])
  for (const lost of answers.filter((a) => a.status === 400))
    t.equal(lost.body.error, 'InviteExhausted')
  t.equal((await w.ops()).length, 1, 'one member added')
  t.match((await w.api('GET', '/invites')).body.invites, [{ id, uses: 1 }])
})

t.test(
  'a ban removes the member, revokes its credentials, refuses it until it expires',
  async (t) => {
    const w = await world(t)
    const alice = w.user('alice')
    const open = await w.invite({ maxUses: null })
    await w.accept(alice, open.code)
    const cred = await w.getCredential(alice)
    t.equal(cred.status, 200)
    t.equal((await w.api('PUT', '/join-settings', { open: true })).status, 200)

    const until = new Date(w.a.clock.nowMs() + 24 * HOUR_MS).toISOString()
    const banned = await w.api('PUT', `/bans/${enc(alice.did)}`, {
      reason: 'spam',
      expiresAt: until,
    })
    t.match(banned, {
      status: 200,
      body: { did: alice.did, reason: 'spam', createdBy: w.owner.did },
    })
    t.same((await w.ops()).at(-1), { op: 'remove', did: alice.did, read: false, write: false })
    const held = await w.a.ctx.credentials.list(w.space, { limit: 10, user: alice.did })
    t.ok(held[0]?.revokedAt, 'its credential is revoked')
    t.match(await w.accept(alice, open.code), { status: 400, body: { error: 'Banned' } })
    t.match(await w.request(alice), { status: 400, body: { error: 'Banned' } })
    t.match((await w.api('GET', '/bans')).body.bans, [{ did: alice.did }])

    w.a.clock.advance(24 * HOUR_MS)
    t.equal((await w.accept(alice, open.code)).status, 200, 'an expired ban no longer applies')

    const bob = w.user('bob')
    await w.api('PUT', `/bans/${enc(bob.did)}`, {})
    t.match(await w.accept(bob, open.code), { status: 400, body: { error: 'Banned' } })
    t.equal((await w.api('DELETE', `/bans/${enc(bob.did)}`)).status, 204)
    t.equal((await w.accept(bob, open.code)).status, 200, 'a lifted ban no longer applies')
    t.match(await w.api('DELETE', `/bans/${enc(bob.did)}`), { status: 404 })
    t.match(await w.api('PUT', `/bans/${enc(w.authority.did)}`, {}), { status: 400 })
  },
)

t.test('a ban revokes credentials whatever the read policy', async (t) => {
  const w = await world(t)
  const pub = await w.a.ctx.spaces.create({
    authority: w.authority.did,
    spaceType: 'com.example.forum',
    skey: 'public',
    ...w.a.ctx.presets.resolve('public-read', {}),
  })
  const eve = w.user('eve')
  const cred = await w.getCredential(eve, { space: pub.uri })
  t.equal(cred.status, 200, 'anyone reads a public space')
  t.equal((await w.api('PUT', `/bans/${enc(eve.did)}`, {}, { space: pub.uri })).status, 200)
  const held = await w.a.ctx.credentials.list(pub.uri, { limit: 10, user: eve.did })
  t.ok(held[0]?.revokedAt, 'revoked, though eve was never a member')
})

t.test('a join request, from asking to approval or denial', async (t) => {
  const w = await world(t)
  const [bob, carol, dave] = [w.user('bob'), w.user('carol'), w.user('dave')]
  t.match(await w.request(bob), { status: 400, body: { error: 'JoinRequestsClosed' } })
  t.same((await w.api('GET', '/join-settings')).body, { open: false }, 'off unless turned on')
  await w.api('PUT', '/join-settings', { open: true })

  const asked = await w.request(bob, w.space, 'hello, I run the Tuesday meetup')
  t.match(asked, { status: 200, body: { status: 'pending', did: bob.did, message: /Tuesday/ } })
  t.equal((await w.request(bob)).body.id, asked.body.id, 'one pending request per DID')
  t.match((await w.mine(bob)).body, { id: asked.body.id, status: 'pending' })
  t.match(await w.mine(dave), { status: 400, body: { error: 'JoinRequestNotFound' } })
  t.match((await w.api('GET', '/join-requests?status=pending')).body.requests, [
    { id: asked.body.id, did: bob.did },
  ])

  const approved = await w.api('POST', `/join-requests/${asked.body.id}/approve`, {
    read: true,
    write: true,
  })
  t.match(approved.body, { status: 'approved', read: true, write: true, decidedBy: w.owner.did })
  t.same(await w.ops(), [{ op: 'add', did: bob.did, read: true, write: true }])
  t.match((await w.mine(bob)).body, { status: 'approved', read: true, write: true })
  t.notOk('decidedBy' in (await w.mine(bob)).body, 'the requester is not told who decided')
  t.match(await w.api('POST', `/join-requests/${asked.body.id}/deny`, {}), {
    status: 409,
    body: { error: 'AlreadyDecided' },
  })
  t.match(await w.request(bob), { status: 400, body: { error: 'AlreadyMember' } })

  const second = await w.request(carol)
  const denied = await w.api('POST', `/join-requests/${second.body.id}/deny`, {
    reason: 'members are invited by the board',
  })
  t.match(denied.body, { status: 'denied', reason: /board/ })
  t.match((await w.mine(carol)).body, { status: 'denied', reason: /board/ })
  t.equal((await w.ops()).length, 1, 'a denial changes no member')
  t.match(await w.api('POST', '/join-requests/nope/approve', {}), { status: 404 })
  t.match((await w.api('GET', '/join-requests?status=denied')).body.requests, [{ did: carol.did }])

  await w.api('PUT', '/join-settings', { open: false })
  t.match(await w.request(dave), { status: 400, body: { error: 'JoinRequestsClosed' } })
})

t.test('join requests are limited per requester, across spaces', async (t) => {
  const w = await world(t, { GATEHOUSE_JOIN_REQUESTS_PER_HOUR_MAX: '2' })
  const spaces = []
  for (const skey of ['s1', 's2', 's3']) {
    const made = await w.a.ctx.spaces.create({
      authority: w.authority.did,
      spaceType: 'com.example.forum',
      skey,
      ...w.a.ctx.presets.resolve('members-only', {}),
    })
    await w.api('PUT', '/join-settings', { open: true }, { space: made.uri })
    spaces.push(made.uri)
  }
  const eve = w.user('eve')
  t.equal((await w.request(eve, spaces[0])).status, 200)
  t.equal((await w.request(eve, spaces[1])).status, 200)
  t.match(await w.request(eve, spaces[2]), { status: 429, body: { error: 'RateLimitExceeded' } })
  t.equal((await w.request(w.user('frank'), spaces[2])).status, 200, 'others are not held back')
  w.a.clock.advance(HOUR_MS)
  t.equal((await w.request(eve, spaces[2])).status, 200, 'an hour later')
})

t.test('the operator runs invites, join requests and bans from the command line', async (t) => {
  const w = await world(t)
  // The command reads the wall clock.
  w.a.clock.set(Date.now())
  const cli = async (...argv: string[]) => {
    const { config, secrets } = loadConfig({
      GATEHOUSE_DATA_DIR: w.a.dataDir,
      GATEHOUSE_DATABASE_URL: w.a.database.url,
      GATEHOUSE_LOG_LEVEL: 'silent',
    })
    const out: string[] = []
    await runCli(argv, config, secrets, (l) => out.push(l), undefined)
    return JSON.parse(out.join('\n'))
  }
  const [gil, hal, ivy] = [w.user('gil'), w.user('hal'), w.user('ivy')]
  const made = await cli('invite', 'create', w.space, '--write', 'on', '--max-uses', 'unlimited')
  t.match(made, { maxUses: null, write: true, link: /\/join\// })
  t.equal((await w.accept(gil, made.code)).status, 200)
  t.match(await cli('invite', 'list', w.space), [
    { id: made.id, uses: 1, usedBy: [{ did: gil.did }] },
  ])
  t.same(await cli('invite', 'revoke', w.space, made.id), { id: made.id, revoked: true })
  t.match(await w.accept(hal, made.code), { body: { error: 'InviteRevoked' } })

  t.same(await cli('join-request', 'open', w.space), { uri: w.space, joinRequests: true })
  const asked = (await w.request(hal)).body
  const denied = (await w.request(ivy)).body
  const pending = await cli('join-request', 'list', w.space, '--status', 'pending')
  t.same(pending.map((r: { id: string }) => r.id).sort(), [asked.id, denied.id].sort())
  t.match(await cli('join-request', 'approve', w.space, asked.id, '--write', 'on'), {
    status: 'approved',
    write: true,
  })
  t.match(await cli('join-request', 'deny', w.space, denied.id, '--reason', 'full'), {
    status: 'denied',
    reason: 'full',
  })
  t.match(await cli('ban', 'put', w.space, gil.did, '--reason', 'spam'), { did: gil.did })
  t.match(await cli('ban', 'list', w.space), [{ did: gil.did, reason: 'spam' }])
  t.same(await cli('ban', 'lift', w.space, gil.did), { did: gil.did, lifted: true })
  t.same(
    (await w.ops()).map((o) => [o.op, o.did]),
    [
      ['add', gil.did],
      ['add', hal.did],
      ['remove', gil.did],
    ],
  )
})

/**
 * A space whose readers its managing app decides on (a loopback app answering `status()` to
 * whatever it is sent), taking join requests.
 */
async function gatedSpace(t: Test, w: Awaited<ReturnType<typeof world>>, status: () => number) {
  const app = await MockService.start(t, (_req, res) => app.json(res, status(), {}))
  const appId = w.web.create('app', {
    services: { gatehouse_app: { type: 'GatehouseApp', endpoint: app.origin } },
  })
  const gatedBy = { kind: 'managing-app' as const, managingApp: `${appId.did}#gatehouse_app` }
  const gated = await w.a.ctx.spaces.create({
    authority: w.authority.did,
    spaceType: 'com.example.forum',
    skey: 'gated',
    readPolicy: gatedBy,
    writePolicy: gatedBy,
    appAccess: { kind: 'open' },
  })
  await w.api('PUT', '/join-settings', { open: true }, { space: gated.uri })
  return { app, appId, gated }
}

t.test('a managing app is sent each new request, down and back, and decides it', async (t) => {
  const w = await world(t)
  let status = 503
  const { app, appId, gated } = await gatedSpace(t, w, () => status)
  const notices = w.a.ctx.db.prisma.joinRequestNotice
  const bob = w.user('bob')
  const asked = await w.request(bob, gated.uri, 'I write for the newsletter')
  t.equal(asked.status, 200)

  await w.a.ctx.relay.runOnce()
  t.equal(app.calls.length, 1, 'sent once: the app is down')
  t.match(await notices.findFirst(), { attempts: 1, lastError: /503/ })
  await w.a.ctx.relay.runOnce()
  t.equal(app.calls.length, 1, 'not again before its backoff')

  status = 200
  w.a.clock.advance(60_000)
  await w.a.ctx.relay.runOnce()
  t.equal(app.calls.length, 2, 'sent again once the app is back')
  t.match(app.calls[1], {
    path: '/xrpc/dev.gatehouse.space.notifyJoinRequest',
    body: { space: gated.uri, id: asked.body.id, did: bob.did, message: /newsletter/ },
  })
  t.equal(await notices.count(), 0, 'delivered: nothing left queued')

  const decide = async (by: WebIdentity, input: object) => {
    const lxm = 'dev.gatehouse.space.decideJoinRequest'
    const jwt = serviceJwt({ iss: by, aud: w.a.ctx.identity.did, lxm, nowSec: w.now() })
    const res = await w.a.fetch(`/xrpc/${lxm}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' },
      body: JSON.stringify({ space: gated.uri, ...input }),
    })
    return { status: res.status, body: (await res.json()) as any }
  }
  const carol = w.user('carol')
  const other = (await w.request(carol, gated.uri)).body
  t.match(await decide(w.user('mallory'), { id: other.id, decision: 'approve' }), {
    status: 400,
    body: { error: 'NotSpaceOwner' },
  })
  t.match(await decide(appId, { id: asked.body.id, decision: 'approve', write: true }), {
    status: 200,
    body: { status: 'approved', read: true, write: true },
  })
  t.same(await w.ops(gated.uri), [{ op: 'add', did: bob.did, read: true, write: true }])
  t.match(await decide(appId, { id: other.id, decision: 'deny', reason: 'not yet' }), {
    body: { status: 'denied', reason: 'not yet' },
  })
  t.match((await w.mine(carol, gated.uri)).body, { status: 'denied', reason: 'not yet' })
  await w.a.ctx.relay.runOnce()
  t.equal(await notices.count(), 0, 'a request decided before it was sent is not sent')
})

t.test('a request no managing app will take is left to the managers', async (t) => {
  const w = await world(t, { GATEHOUSE_RELAY_RETRY_WINDOW_SEC: '60' })
  const { app, gated } = await gatedSpace(t, w, () => 400)
  await w.request(w.user('dan'), gated.uri)
  await w.a.ctx.relay.runOnce()
  t.equal(app.calls.length, 1)
  t.equal(await w.a.ctx.db.prisma.joinRequestNotice.count(), 0, 'refused for good: not retried')
  t.match(
    (await w.api('GET', '/join-requests?status=pending', undefined, { space: gated.uri })).body,
    {
      requests: [{ status: 'pending' }],
    },
  )
})

t.test('the janitor prunes decided requests after their retention, and lapsed bans', async (t) => {
  const w = await world(t)
  await w.api('PUT', '/join-settings', { open: true })
  const [kim, lou] = [w.user('kim'), w.user('lou')]
  const decided = (await w.request(kim)).body
  await w.request(lou)
  await w.api('POST', `/join-requests/${decided.id}/deny`, { reason: 'no' })
  const until = new Date(w.a.clock.nowMs() + HOUR_MS).toISOString()
  await w.api('PUT', `/bans/${enc(kim.did)}`, { expiresAt: until })
  await w.api('PUT', `/bans/${enc(lou.did)}`, {})
  t.match(await w.a.ctx.janitor.run(), { joinRequests: 0, bans: 0 })
  w.a.clock.advance(31 * 24 * HOUR_MS)
  t.match(await w.a.ctx.janitor.run(), { joinRequests: 2, bans: 1 })
  t.match((await w.api('GET', '/bans')).body.bans, [{ did: lou.did }], 'a ban without expiry stays')
  t.same((await w.api('GET', '/join-requests')).body.requests, [], 'lou’s, denied by the ban, too')
})

t.test(
  'a space made again starts without the old one’s invites, requests, bans or join setting',
  async (t) => {
    const w = await world(t)
    const old = await w.invite({ maxUses: null })
    t.equal((await w.api('PUT', '/join-settings', { open: true })).status, 200)
    const asker = w.user('asker')
    const pending = await w.request(asker)
    t.equal(pending.body.status, 'pending')
    const banned = w.user('banned')
    t.equal((await w.api('PUT', `/bans/${enc(banned.did)}`, { reason: 'spam' })).status, 200)
    t.ok(await w.a.ctx.manager.deleteSpace(w.space))
    await w.a.ctx.spaces.create({
      authority: w.authority.did,
      spaceType: 'com.example.forum',
      skey: w.space.split('/').pop()!,
      ...w.a.ctx.presets.resolve('members-only', {}),
    })
    t.match(await w.accept(w.user('late'), old.code), {
      status: 400,
      body: { error: 'InviteRevoked' },
    })
    t.match(await w.request(w.user('newcomer')), {
      status: 400,
      body: { error: 'JoinRequestsClosed' },
    })
    t.match(await w.mine(asker), {
      status: 200,
      body: { status: 'denied', reason: 'space deleted' },
    })
    t.same((await w.api('GET', '/bans')).body.bans, [], 'no bans carried over')
  },
)

t.test('an approval grants something, and a ban ends in the future', async (t) => {
  const w = await world(t)
  t.equal((await w.api('PUT', '/join-settings', { open: true })).status, 200)
  const asked = await w.request(w.user('asker'))
  t.match(
    await w.api('POST', `/join-requests/${asked.body.id}/approve`, { read: false, write: false }),
    { status: 400, body: { error: 'InvalidRequest' } },
  )
  const past = new Date(w.now() * 1000 - 1000).toISOString()
  t.match(await w.api('PUT', `/bans/${enc(w.user('x').did)}`, { expiresAt: past }), {
    status: 400,
    body: { error: 'InvalidRequest' },
  })
})

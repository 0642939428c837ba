// The managers' REST API through the real HTTP server: API tokens (scope, expiry, revocation, the
// creator's role), every capability as a real call per role, idempotent creates, pagination, bulk
// import and export, and every response checked against the schema its OpenAPI entry is made from.
import t, { type Test } from 'tap'
import {
  CAPABILITIES,
  MANAGER_ROLES,
  type Capability,
  type ManagerRole,
} from '../../src/authorities/managers.js'
import { ROUTES } from '../../src/rest/routes.js'
import { Validator } from '@seriousme/openapi-schema-validator'
import { TestArbiter } from '../_helpers/arbiter.js'
import { answerBody } from '../_helpers/fetch.js'
import { freePort } from '../_helpers/process.js'
import { DidWebHost, PlcDirectory } from '../_helpers/identities.js'
import { registerAuthority } from '../_helpers/spaces.js'

/** Routes answered with a 2xx somewhere in this file: the last test checks that it is all of them. */
const exercised = new Set<string>()
/** Routes whose answers another file checks against their schemas. */
const ELSEWHERE: Record<string, string> = {
  'POST /login': 'test/managers/login.test.ts',
  'GET /session': 'test/managers/login.test.ts',
  'POST /logout': 'test/managers/login.test.ts',
  'POST /logout-everywhere': 'test/managers/login.test.ts',
  'POST /authorities/{authority}/spaces/{type}/{skey}/dead-letters/{id}/replay':
    'test/rest/replay.test.ts',
  'GET /authorities/{authority}/spaces/{type}/{skey}/invites': 'test/members/admission.test.ts',
  'POST /authorities/{authority}/spaces/{type}/{skey}/invites': 'test/members/admission.test.ts',
  'POST /authorities/{authority}/spaces/{type}/{skey}/invites/{id}/revoke':
    'test/members/admission.test.ts',
  'GET /authorities/{authority}/spaces/{type}/{skey}/join-requests':
    'test/members/admission.test.ts',
  'POST /authorities/{authority}/spaces/{type}/{skey}/join-requests/{id}/approve':
    'test/members/admission.test.ts',
  'POST /authorities/{authority}/spaces/{type}/{skey}/join-requests/{id}/deny':
    'test/members/admission.test.ts',
  'GET /authorities/{authority}/spaces/{type}/{skey}/join-settings':
    'test/members/admission.test.ts',
  'PUT /authorities/{authority}/spaces/{type}/{skey}/join-settings':
    'test/members/admission.test.ts',
  'GET /authorities/{authority}/spaces/{type}/{skey}/bans': 'test/members/admission.test.ts',
  'PUT /authorities/{authority}/spaces/{type}/{skey}/bans/{member}':
    'test/members/admission.test.ts',
  'DELETE /authorities/{authority}/spaces/{type}/{skey}/bans/{member}':
    'test/members/admission.test.ts',
  'GET /authorities/{authority}/spaces/{type}/{skey}/stats/credentials': 'test/rest/stats.test.ts',
  'GET /authorities/{authority}/spaces/{type}/{skey}/stats/members': 'test/rest/stats.test.ts',
  'GET /authorities/{authority}/spaces/{type}/{skey}/stats/deliveries': 'test/rest/stats.test.ts',
}

function routeOf(method: string, path: string) {
  const bare = path.split('?')[0]!
  return ROUTES.find(
    (r) => r.method === method && new RegExp(`^${r.path.replace(/\{\w+\}/g, '[^/]+')}$`).test(bare),
  )
}

interface Answer {
  status: number
  body: any
  headers: Headers
}

async function world(t: Test) {
  const a = await TestArbiter.create(t)
  const web = await DidWebHost.start(t)
  const authority = web.create('authority')
  await registerAuthority(a.ctx, authority.did, { atproto: authority.key })
  const owner = web.create('owner')
  await a.ctx.managers.change(authority.did, owner.did, 'owner', 'operator')
  const token = async (
    role: ManagerRole,
    o: { by?: string; space?: string; expiresAt?: Date } = {},
  ) => {
    const by = o.by ?? owner.did
    const creatorRole = (await a.ctx.managers.roleOf(authority.did, by))!
    const made = await a.ctx.tokens.create({
      authority: authority.did,
      createdBy: by,
      creatorRole,
      name: `${role} token`,
      role,
      space: o.space,
      expiresAt: o.expiresAt,
    })
    return made.token
  }
  const api = async (
    method: string,
    path: string,
    o: { token?: string; body?: unknown; ndjson?: string; headers?: Record<string, string> } = {},
  ): Promise<Answer> => {
    const headers: Record<string, string> = { ...o.headers }
    if (o.token) headers.authorization = `Bearer ${o.token}`
    if (o.body !== undefined) headers['content-type'] = 'application/json'
    if (o.ndjson !== undefined) headers['content-type'] = 'application/x-ndjson'
    const res = await a.fetch(`/api/v1${path}`, {
      method,
      headers,
      body: o.ndjson ?? (o.body === undefined ? undefined : JSON.stringify(o.body)),
    })
    const route = routeOf(method, path)
    const { body, ndjson } = await answerBody(res)
    if (res.status < 300 && route) {
      exercised.add(`${route.method} ${route.path}`)
      if (route.response) {
        for (const item of ndjson ? body : [body]) {
          const checked = route.response.safeParse(item)
          if (!checked.success)
            throw new Error(`${method} ${path}: answer not as documented: ${checked.error.message}`)
        }
      } else if (res.status !== 204) throw new Error(`${method} ${path}: ${res.status}, not 204`)
    } else if (res.status >= 400) {
      if (typeof body?.error !== 'string' || typeof body?.message !== 'string')
        throw new Error(
          `${method} ${path}: refusal without {error, message}: ${JSON.stringify(body)}`,
        )
    }
    return { status: res.status, body, headers: res.headers }
  }
  const base = `/authorities/${encodeURIComponent(authority.did)}`
  return { a, web, authority, owner, token, api, base }
}

const enc = encodeURIComponent
const PRESET = { spaceType: 'com.example.forum', preset: 'members-only' }

t.test('no token, a wrong one, and the OpenAPI document', async (t) => {
  const { api, base, a } = await world(t)
  t.match(await api('GET', '/me'), { status: 401, body: { error: 'AuthenticationRequired' } })
  t.match(await api('GET', base, { token: 'gh_nope' }), {
    status: 401,
    body: { error: 'InvalidToken' },
  })
  t.match(await api('GET', base, { token: 'Basic x' }), { status: 401 })
  const doc = (await (await a.fetch('/api/v1/openapi.json')).json()) as any
  t.equal(doc.openapi, '3.1.0')
  const page = await a.fetch('/api/v1/docs')
  t.match(page.headers.get('content-type'), /text\/html/)
  t.match(await page.text(), /POST<\/span> <code>\/authorities\/\{authority\}\/spaces<\/code>/)
})

t.test('an owner’s token runs a space from creation to deletion', async (t) => {
  const { a, api, base, token, web, authority } = await world(t)
  const tk = await token('owner')
  t.match(await api('GET', '/me', { token: tk }), {
    status: 200,
    body: { via: 'token', authorities: [{ did: authority.did, role: 'owner' }] },
  })
  t.match(await api('GET', '/authorities', { token: tk }), {
    body: { authorities: [{ did: authority.did, role: 'owner', status: 'active' }] },
  })
  t.match(await api('GET', base, { token: tk }), { status: 200, body: { did: authority.did } })
  t.match(
    await api('GET', `${base}/did-document`, { token: tk }),
    { status: 200, body: { document: { id: authority.did, verificationMethod: [{}] } } },
    'the DID document as its host publishes it',
  )

  const create = (skey: string, key?: string) =>
    api('POST', `${base}/spaces`, {
      token: tk,
      body: { ...PRESET, skey },
      headers: key ? { 'idempotency-key': key } : {},
    })
  const made = await create('one', 'k1')
  t.equal(made.status, 201)
  t.match(made.body, { uri: `at://${authority.did}/space/com.example.forum/one`, members: 0 })
  const again = await create('one', 'k1')
  t.same(again.body, made.body, 'a repeat with the key gets the first answer')
  t.equal(again.headers.get('idempotent-replayed'), 'true')
  t.match(await create('two', 'k1'), { status: 409, body: { error: 'IdempotencyKeyReused' } })
  t.match(await create('one'), { status: 409, body: { error: 'SpaceAlreadyExists' } })
  t.match(await api('POST', `${base}/spaces`, { token: tk, body: { spaceType: 'x' } }), {
    status: 400,
    body: { error: 'InvalidRequest', message: /spaceType/ },
  })
  t.match(await api('POST', `${base}/spaces`, { token: tk, body: { ...PRESET, preset: 'nope' } }), {
    status: 400,
    body: { message: /no preset named/ },
  })
  await create('two')
  await create('three')

  const page1 = await api('GET', `${base}/spaces?limit=2`, { token: tk })
  t.equal(page1.body.spaces.length, 2)
  const page2 = await api(
    'GET',
    `${base}/spaces?limit=2&cursor=${encodeURIComponent(page1.body.cursor)}`,
    { token: tk },
  )
  t.same(
    [...page1.body.spaces, ...page2.body.spaces]
      .map((s: { uri: string }) => s.uri.split('/').pop())
      .sort(),
    ['one', 'three', 'two'],
  )
  t.notOk(page2.body.cursor, 'the last page has no cursor')

  const sp = `${base}/spaces/com.example.forum/one`
  t.match(await api('GET', sp, { token: tk }), { status: 200, body: { rosterVisibility: 'owner' } })
  t.match(await api('PATCH', sp, { token: tk, body: { preset: 'public-read' } }), {
    status: 200,
    body: { readPolicy: { $type: /publicPolicy|#public/ } },
  })
  const roster = (rosterVisibility: string) =>
    api('PUT', `${sp}/roster-visibility`, { token: tk, body: { rosterVisibility } })
  t.match(await roster('count'), { status: 200, body: { rosterVisibility: 'count' } })
  t.match(await roster('everyone'), { status: 400, body: { error: 'InvalidRequest' } })
  t.match(await api('GET', sp, { token: tk }), { body: { rosterVisibility: 'count' } })
  t.match(
    await a.ctx.audit.query({
      authority: authority.did,
      action: 'space.roster-visibility',
      limit: 5,
    }),
    [{ door: 'rest', after: '{"rosterVisibility":"count"}' }],
    'and it is in the audit log',
  )

  const alice = web.create('alice').did
  const bob = web.create('bob').did
  t.match(await api('PUT', `${sp}/members/${enc(alice)}`, { token: tk, body: {} }), {
    status: 200,
    body: { did: alice, read: true, write: true },
  })
  await api('PUT', `${sp}/members/${enc(bob)}`, { token: tk, body: { write: false } })
  t.match(await api('PUT', `${sp}/members/not-a-did`, { token: tk, body: {} }), { status: 400 })
  const all = await api('GET', `${sp}/members`, { token: tk })
  t.same(
    all.body.members.map((m: { did: string }) => m.did),
    [alice, bob].sort(),
  )
  const found = await api('GET', `${sp}/members?search=${encodeURIComponent(bob.slice(0, -2))}`, {
    token: tk,
  })
  t.same(found.body.members, [{ did: bob, read: true, write: false }], 'search by DID prefix')
  const first = await api('GET', `${sp}/members?limit=1`, { token: tk })
  const rest = await api(
    'GET',
    `${sp}/members?limit=1&cursor=${encodeURIComponent(first.body.cursor)}`,
    { token: tk },
  )
  t.equal(rest.body.members.length, 1)
  t.not(rest.body.members[0].did, first.body.members[0].did, 'the cursor moves on')
  t.equal((await api('GET', sp, { token: tk })).body.members, 2, 'the space counts its members')

  const carol = web.create('carol').did
  const imported = await api('POST', `${sp}/members/import`, {
    token: tk,
    ndjson: `{"did":"${carol}","read":true,"write":false}\n{"did":"${alice}","remove":true}\n`,
  })
  t.match(imported, { status: 200, body: { received: 2, changed: 2 } })
  t.match(await api('POST', `${sp}/members/import`, { token: tk, ndjson: '{"did":1}\n' }), {
    status: 400,
    body: { message: /line 1/ },
  })
  const exported = await api('GET', `${sp}/members/export`, { token: tk })
  t.same(
    exported.body,
    [
      { did: bob, read: true, write: false },
      { did: carol, read: true, write: false },
    ].sort((x, y) => (x.did < y.did ? -1 : 1)),
  )
  t.equal((await api('DELETE', `${sp}/members/${enc(bob)}`, { token: tk })).status, 204)

  t.match(await api('GET', `${sp}/credentials`, { token: tk }), {
    status: 200,
    body: { credentials: [] },
  })
  t.match(await api('POST', `${sp}/credentials/revoke`, { token: tk, body: { user: carol } }), {
    body: { revoked: 0 },
  })
  t.match(await api('GET', `${sp}/registrations`, { token: tk }), { body: { registrations: [] } })
  t.match(await api('GET', `${sp}/dead-letters`, { token: tk }), { body: { deadLetters: [] } })

  t.equal((await api('DELETE', sp, { token: tk })).status, 204)
  t.match(await api('GET', sp, { token: tk }), { status: 404, body: { error: 'SpaceNotFound' } })
  t.match(await api('GET', `${base}/spaces/com.example.forum/never`, { token: tk }), {
    status: 404,
  })
})

t.test('roles over REST: grants, the owner rule and the last owner', async (t) => {
  const { api, base, token, web, owner } = await world(t)
  const own = await token('owner')
  const adminDid = web.create('admin').did
  t.match(
    await api('PUT', `${base}/managers/${enc(adminDid)}`, { token: own, body: { role: 'admin' } }),
    {
      status: 200,
      body: { role: 'admin' },
    },
  )
  const admin = await token('admin', { by: adminDid })
  const modDid = web.create('mod').did
  t.match(
    await api('PUT', `${base}/managers/${enc(modDid)}`, {
      token: admin,
      body: { role: 'moderator' },
    }),
    {
      status: 200,
    },
  )
  t.match(
    await api('PUT', `${base}/managers/${enc(modDid)}`, { token: admin, body: { role: 'owner' } }),
    {
      status: 403,
      body: { message: /only an owner/ },
    },
  )
  t.match(await api('DELETE', `${base}/managers/${enc(owner.did)}`, { token: admin }), {
    status: 403,
  })
  t.match(await api('DELETE', `${base}/managers/${enc(owner.did)}`, { token: own }), {
    status: 403,
    body: { message: /last owner/ },
  })
  const listed = await api('GET', `${base}/managers`, { token: admin })
  t.same(
    listed.body.managers.map((m: { did: string; role: string }) => [m.did, m.role]).sort(),
    [
      [adminDid, 'admin'],
      [modDid, 'moderator'],
      [owner.did, 'owner'],
    ].sort(),
  )
  const one = await api('GET', `${base}/managers?limit=1`, { token: admin })
  const two = await api('GET', `${base}/managers?limit=2&cursor=${enc(one.body.cursor)}`, {
    token: admin,
  })
  t.same(
    [...one.body.managers, ...two.body.managers].map((m: { did: string }) => m.did),
    [adminDid, modDid, owner.did].sort(),
    'managers page by cursor, in DID order',
  )
  t.equal((await api('DELETE', `${base}/managers/${enc(modDid)}`, { token: admin })).status, 204)
})

t.test('API tokens: creation rules, scope, expiry, revocation, the creator’s role', async (t) => {
  const { a, api, base, token, web, authority } = await world(t)
  const own = await token('owner')
  await api('POST', `${base}/spaces`, { token: own, body: { ...PRESET, skey: 'a' } })
  await api('POST', `${base}/spaces`, { token: own, body: { ...PRESET, skey: 'b' } })
  const spaceA = `at://${authority.did}/space/com.example.forum/a`

  const made = await api('POST', `${base}/tokens`, {
    token: own,
    body: { name: 'ci', role: 'moderator', space: spaceA },
    headers: { 'idempotency-key': 'ci-1' },
  })
  t.equal(made.status, 201)
  t.match(made.body, { token: /^gh_/, role: 'moderator', space: spaceA })
  const scoped = made.body.token as string
  const replay = await api('POST', `${base}/tokens`, {
    token: own,
    body: { name: 'ci', role: 'moderator', space: spaceA },
    headers: { 'idempotency-key': 'ci-1' },
  })
  t.equal(replay.body.id, made.body.id, 'a repeated create makes no second token')
  const stored = await a.ctx.db.prisma.apiToken.findUnique({ where: { id: made.body.id } })
  t.not(stored?.hash, scoped, 'only a hash is stored')
  t.notOk(JSON.stringify(stored).includes(scoped.slice(3)), 'the secret is nowhere in the row')

  const alice = web.create('alice').did
  t.equal(
    (
      await api('PUT', `${base}/spaces/com.example.forum/a/members/${enc(alice)}`, {
        token: scoped,
        body: {},
      })
    ).status,
    200,
  )
  t.match(
    await api('PUT', `${base}/spaces/com.example.forum/b/members/${enc(alice)}`, {
      token: scoped,
      body: {},
    }),
    {
      status: 403,
      body: { message: /limited to/ },
    },
  )
  t.match(await api('GET', `${base}/spaces`, { token: scoped }), { status: 403 })

  const listed = await api('GET', `${base}/tokens`, { token: own })
  t.ok(listed.body.tokens.some((x: { id: string }) => x.id === made.body.id))
  t.notOk(JSON.stringify(listed.body).includes(scoped), 'a listing never shows a secret')

  // A moderator cannot make an admin token; nobody makes one that has expired.
  const modDid = web.create('mod').did
  await a.ctx.managers.change(authority.did, modDid, 'moderator', 'operator')
  const mod = await token('moderator', { by: modDid })
  t.match(await api('POST', `${base}/tokens`, { token: mod, body: { name: 'x', role: 'admin' } }), {
    status: 400,
    body: { message: /may not create a token with the admin role/ },
  })
  t.match(
    await api('POST', `${base}/tokens`, {
      token: own,
      body: { name: 'x', role: 'admin', expiresAt: '2000-01-01T00:00:00Z' },
    }),
    { status: 400, body: { message: /future/ } },
  )

  // Expiry, on the server's clock.
  const brief = await token('owner', { expiresAt: new Date(a.clock.nowMs() + 60_000) })
  t.equal((await api('GET', base, { token: brief })).status, 200)
  a.clock.advance(61_000)
  t.match(await api('GET', base, { token: brief }), {
    status: 401,
    body: { error: 'InvalidToken' },
  })

  // Revocation.
  t.equal((await api('DELETE', `${base}/tokens/${made.body.id}`, { token: own })).status, 204)
  t.match(await api('GET', `${base}/spaces/com.example.forum/a`, { token: scoped }), {
    status: 401,
  })
  t.match(await api('DELETE', `${base}/tokens/nope`, { token: own }), {
    status: 404,
    body: { error: 'TokenNotFound' },
  })

  // A token never acts above its creator's present role.
  const adminDid = web.create('admin').did
  await a.ctx.managers.change(authority.did, adminDid, 'admin', 'operator')
  const adminToken = await token('admin', { by: adminDid })
  const body = { ...PRESET, skey: 'c' }
  t.equal((await api('POST', `${base}/spaces`, { token: adminToken, body })).status, 201)
  await a.ctx.managers.change(authority.did, adminDid, 'moderator', 'operator')
  t.match(
    await api('PATCH', `${base}/spaces/com.example.forum/c`, {
      token: adminToken,
      body: { preset: 'public-read' },
    }),
    {
      status: 403,
      body: { message: /moderator role does not allow space-config/ },
    },
  )
  await a.ctx.managers.change(authority.did, adminDid, undefined, 'operator')
  t.match(await api('GET', base, { token: adminToken }), {
    status: 403,
    body: { message: /does not manage/ },
  })
  t.match(await api('GET', `/authorities/${enc('did:web:other.example')}`, { token: own }), {
    status: 403,
    body: { message: /for did:/ },
  })
})

/** One real call per capability, allowed or refused by role exactly as the capability table says. */
t.test('every role × capability as a real call', async (t) => {
  const { a, api, base, token, web, authority } = await world(t)
  const own = await token('owner')
  await api('POST', `${base}/spaces`, { token: own, body: { ...PRESET, skey: 's' } })
  const sp = `${base}/spaces/com.example.forum/s`
  let n = 0
  const calls: Partial<Record<Capability, (tk: string) => Promise<Answer>>> = {
    read: (tk) => api('GET', `${sp}/members`, { token: tk }),
    membership: (tk) =>
      api('PUT', `${sp}/members/${enc(web.create(`m${++n}`).did)}`, { token: tk, body: {} }),
    credentials: (tk) => api('GET', `${sp}/credentials`, { token: tk }),
    notify: (tk) => api('GET', `${sp}/dead-letters`, { token: tk }),
    tokens: (tk) => api('GET', `${base}/tokens`, { token: tk }),
    'bulk-membership': (tk) => api('POST', `${sp}/members/import`, { token: tk, ndjson: '' }),
    'space-config': (tk) => api('PATCH', sp, { token: tk, body: { preset: 'members-only' } }),
    roles: (tk) =>
      api('PUT', `${base}/managers/${enc(web.create(`r${++n}`).did)}`, {
        token: tk,
        body: { role: 'moderator' },
      }),
    authority: (tk) => api('POST', `${base}/rotate-signing-key`, { token: tk, body: {} }),
    audit: (tk) => api('GET', `${base}/audit`, { token: tk }),
  }
  for (const role of MANAGER_ROLES) {
    const who = web.create(`as-${role}`).did
    await a.ctx.managers.change(authority.did, who, role, 'operator')
    const tk = await token(role, { by: who })
    for (const [capability, call] of Object.entries(calls) as [
      Capability,
      (tk: string) => Promise<Answer>,
    ][]) {
      const allowed = (CAPABILITIES[capability] as readonly string[]).includes(role)
      const res = await call(tk)
      if (allowed)
        t.ok(
          res.status < 300,
          `${role} may ${capability} (${res.status} ${JSON.stringify(res.body)})`,
        )
      else
        t.match(res, { status: 403, body: { error: 'Forbidden' } }, `${role} may not ${capability}`)
    }
  }
  t.same(
    Object.keys(CAPABILITIES)
      .filter((c) => !(c in calls))
      .sort(),
    ['invites', 'join-requests'],
    'every capability with a REST operation is tried (invites and join requests come with #25)',
  )
})

t.test('the audit log: listed, exported and verified as documented', async (t) => {
  const { api, base, token } = await world(t)
  const own = await token('owner')
  await api('POST', `${base}/spaces`, { token: own, body: { ...PRESET, skey: 'audited' } })
  const listed = await api('GET', `${base}/audit?action=space.create`, { token: own })
  t.match(listed, { status: 200, body: { entries: [{ action: 'space.create', door: 'rest' }] } })
  const exported = await api('GET', `${base}/audit/export`, { token: own })
  t.equal(exported.status, 200)
  t.equal(exported.body.at(-1).action, 'space.create')
  t.match(await api('POST', `${base}/audit/verify`, { token: own, body: {} }), {
    status: 200,
    body: { ok: true, entries: exported.body.length },
  })
})

t.test('the lifecycle operations run for owners', async (t) => {
  const { api, base, token } = await world(t)
  const own = await token('owner')
  t.match(await api('POST', `${base}/deactivate`, { token: own, body: {} }), {
    status: 200,
    body: { status: 'deactivated' },
  })
  t.match(await api('POST', `${base}/activate`, { token: own, body: {} }), { status: 200 })
  t.match(await api('POST', `${base}/rotate-signing-key`, { token: own, body: {} }), {
    status: 200,
  })
  t.match(await api('POST', `${base}/transfer`, { token: own, body: { endpoint: 'not a url' } }), {
    status: 400,
  })
})

t.test('an authority Gatehouse serves changes its PDS entry over REST', async (t) => {
  const port = await freePort()
  const a = await TestArbiter.create(t, {
    port,
    env: {
      GATEHOUSE_PUBLIC_URL: `http://localhost:${port}`,
      GATEHOUSE_DID_WEB_HOSTS: `localhost%3A${port}`,
    },
  })
  const web = await DidWebHost.start(t)
  const owner = web.create('owner')
  const view = await a.ctx.lifecycle.createWeb({
    did: `did:web:localhost%3A${port}:forum`,
    owner: owner.did,
  })
  const call = await ownerCall(a, view.did, owner.did)
  const res = await call('PATCH', '', { pdsService: false })
  t.equal(res.status, 200)
  const body = (await res.json()) as any
  t.equal(body.pdsService, false)
  t.ok(routeOf('PATCH', '/authorities/x')!.response!.safeParse(body).success)
  exercised.add('PATCH /authorities/{authority}')

  const moved = await call('POST', '/transfer', {})
  t.match(await moved.json(), { status: 'transferred' })
  t.equal(moved.status, 200)
  exercised.add('POST /authorities/{authority}/transfer')
})

t.test('tokens made by tokens never outlive them; only equals or betters revoke', async (t) => {
  const { a, api, base, token, web, authority } = await world(t)
  const hour = new Date(a.clock.nowMs() + 3600_000)
  const parent = await token('owner', { expiresAt: hour })
  const make = (body: object, tk = parent, key?: string) =>
    api('POST', `${base}/tokens`, {
      token: tk,
      body: { name: 'child', role: 'admin', ...body },
      headers: key ? { 'idempotency-key': key } : {},
    })
  const child = await make({}, parent, 'child-1')
  t.equal(child.status, 201)
  t.equal(child.body.expiresAt, hour.toISOString(), 'a child inherits its parent’s expiry')
  t.match(await make({ expiresAt: new Date(hour.getTime() + 1000).toISOString() }), {
    status: 400,
    body: { message: /not be later than the creating token/ },
  })
  const grandchild = await make({ role: 'moderator' }, child.body.token)
  t.equal(grandchild.status, 201)

  // A replay answers the token without its secret, which was never kept.
  const replay = await make({}, parent, 'child-1')
  t.equal(replay.headers.get('idempotent-replayed'), 'true')
  t.equal(replay.body.id, child.body.id)
  t.notOk('token' in replay.body, 'a replay has no secret')
  const kept = await a.ctx.db.prisma.idempotentResponse.findMany()
  t.notOk(JSON.stringify(kept).includes(child.body.token.slice(3)), 'no secret kept')
  t.equal(child.headers.get('cache-control'), 'no-store')

  // Revoking the parent takes its descendants with it.
  const parentId =
    (await api('GET', '/me', { token: parent })).status === 200 && child.body.createdBy
  t.ok(parentId)
  const parentRow = await a.ctx.db.prisma.apiToken.findFirstOrThrow({
    where: { id: child.body.id },
  })
  t.equal(
    (await api('DELETE', `${base}/tokens/${parentRow.parentId}`, { token: await token('owner') }))
      .status,
    204,
  )
  for (const tk of [parent, child.body.token, grandchild.body.token])
    t.match(await api('GET', base, { token: tk }), { status: 401 }, 'revoked with its parent')

  // A moderator revokes their own tokens, never an owner's or an admin's.
  const modDid = web.create('mod').did
  await a.ctx.managers.change(authority.did, modDid, 'moderator', 'operator')
  const mod = await token('moderator', { by: modDid })
  const ownerToken = await api('POST', `${base}/tokens`, {
    token: await token('owner'),
    body: { name: 'ci', role: 'admin' },
  })
  t.match(await api('DELETE', `${base}/tokens/${ownerToken.body.id}`, { token: mod }), {
    status: 403,
    body: { message: /may not revoke another manager's admin token/ },
  })
  const own = await api('POST', `${base}/tokens`, {
    token: mod,
    body: { name: 'mine', role: 'moderator' },
  })
  t.equal((await api('DELETE', `${base}/tokens/${own.body.id}`, { token: mod })).status, 204)
})

t.test('a body of another type is refused before anything reads it', async (t) => {
  const { a, api, base, token } = await world(t)
  const tk = await token('owner')
  t.match(await api('POST', '/login', { ndjson: 'x' }), {
    status: 415,
    body: { error: 'UnsupportedMediaType' },
  })
  t.match(await api('POST', `${base}/spaces`, { token: tk, ndjson: '{"a":1}\n' }), { status: 415 })
  // Nesting far past what any operation takes: a 400, whatever part of the server reads it first.
  for (const depth of [1000, 100_000]) {
    const res = await a.fetch(`/api/v1${base}/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tk}`, 'content-type': 'application/json' },
      body: '['.repeat(depth) + ']'.repeat(depth),
    })
    t.equal(res.status, 400, `${depth} deep`)
  }
})

t.test('a did:plc authority replaces its rotation keys over REST', async (t) => {
  const plc = await PlcDirectory.start(t)
  const a = await TestArbiter.create(t, { env: { GATEHOUSE_PLC_URL: plc.url } })
  const web = await DidWebHost.start(t)
  const owner = web.create('owner')
  const view = await a.ctx.lifecycle.createPlc({ owner: owner.did })
  const call = await ownerCall(a, view.did, owner.did)
  const before = view.keys.find((k) => k.purpose === 'rotation' && k.status === 'active')
  const res = await call('POST', '/rotate-rotation-keys', {})
  t.equal(res.status, 200)
  const body = (await res.json()) as any
  t.ok(routeOf('POST', '/authorities/x/rotate-rotation-keys')!.response!.safeParse(body).success)
  const after = body.keys.find(
    (k: { purpose: string; status: string }) => k.purpose === 'rotation' && k.status === 'active',
  )
  t.not(after.publicKey, before?.publicKey, 'a new rotation key of ours')
  exercised.add('POST /authorities/{authority}/rotate-rotation-keys')
})

t.test(
  'the OpenAPI document is valid OpenAPI 3.1 and names every route, each exercised above',
  async (t) => {
    const a = await TestArbiter.create(t)
    const doc = (await (await a.fetch('/api/v1/openapi.json')).json()) as any
    const validator = new Validator()
    const result = await validator.validate(doc)
    t.ok(result.valid, `valid: ${JSON.stringify(result.errors ?? [])}`)
    t.equal(validator.version, '3.1')
    const documented = Object.entries(doc.paths as Record<string, object>).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
    )
    const served = ROUTES.map((r) => `${r.method} ${r.path}`)
    // What the server really answers under /api/v1, read from Fastify's own route tree.
    const live = servedRoutes(a.app.printRoutes({ commonPrefix: false }))
      .filter((r) => r.path.startsWith('/api/v1/'))
      .flatMap((r) => r.methods.filter((m) => m !== 'HEAD').map((m) => `${m} ${r.path.slice(7)}`))
      .map((r) => r.replace(/:(\w+)/g, '{$1}'))
    t.same(
      live.filter((r) => !['GET /openapi.json', 'GET /docs'].includes(r)).sort(),
      [...served].sort(),
      'every /api/v1 route the server answers is in the document (besides the document itself)',
    )
    t.same(documented.sort(), [...served].sort(), 'the document names exactly the routes served')
    t.same(
      served.filter((r) => !exercised.has(r) && !(r in ELSEWHERE)),
      [],
      'every route answered a 2xx in this file (or in the one ELSEWHERE names)',
    )
  },
)

t.test('a kept answer lasts a day, then the janitor prunes it', async (t) => {
  const { a, api, base, token } = await world(t)
  const tk = await token('owner')
  const create = (skey: string) =>
    api('POST', `${base}/spaces`, {
      token: tk,
      body: { ...PRESET, skey },
      headers: { 'idempotency-key': 'daily' },
    })
  t.equal((await create('d1')).status, 201)
  a.clock.advance(23 * 3600_000)
  t.match(await a.ctx.janitor.run(), { idempotentResponses: 0 })
  t.equal((await create('d2')).status, 409, 'within the day the key is still taken')
  a.clock.advance(3600_000 + 1000)
  t.match(await a.ctx.janitor.run(), { idempotentResponses: 1 })
  t.equal((await create('d2')).status, 201, 'after it, the key is free again')
})

/** Fastify's printed route tree as paths and their methods. */
function servedRoutes(tree: string): { path: string; methods: string[] }[] {
  const stack: string[] = []
  const out: { path: string; methods: string[] }[] = []
  for (const line of tree.split('\n')) {
    const m = /^([│ ]*)[├└]── (.*?)(?: \(([A-Z, ]+)\))?$/.exec(line)
    if (!m) continue
    const depth = m[1]!.length / 4
    stack.length = depth
    stack.push(m[2]!)
    if (m[3]) out.push({ path: stack.join(''), methods: m[3].split(', ') })
  }
  return out
}

/** JSON calls on one authority's REST routes as its owner, through a fresh owner token. */
async function ownerCall(a: TestArbiter, authority: string, owner: string) {
  const { token } = await a.ctx.tokens.create({
    authority,
    createdBy: owner,
    creatorRole: 'owner',
    name: 'n',
    role: 'owner',
  })
  return (method: string, sub: string, body: object) =>
    a.fetch(`/api/v1/authorities/${enc(authority)}${sub}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
}

/**
 * Managers' login end to end against a real atproto authorization server (@atproto/pds on loopback,
 * the in-process PLC directory): Gatehouse as a confidential OAuth client, the callback that turns a
 * manager's DID into a session cookie, the session's idle and absolute expiry, logout, logout
 * everywhere, a refused login, and the cookie's CSRF token.
 */
import t from 'tap'
import { request } from 'undici'
import { TestArbiter } from '../_helpers/arbiter.js'
import { loginWorld, type PdsAccount } from '../_helpers/oauth.js'

const { plc, pds, publicUrl, a, authorityDid } = await loginWorld(t)

const HOUR_MS = 3_600_000
const DAY_MS = 24 * HOUR_MS

type Headers = Record<string, string>
async function call(method: 'GET' | 'POST', path: string, headers: Headers = {}, body?: object) {
  const res = await request(`${a.url}${path}`, {
    method,
    headers: body ? { ...headers, 'content-type': 'application/json' } : headers,
    body: body && JSON.stringify(body),
  })
  const text = await res.body.text()
  return {
    status: res.statusCode,
    headers: res.headers,
    json: (text ? JSON.parse(text) : undefined) as Record<string, unknown>,
  }
}

async function manager(name: string): Promise<PdsAccount> {
  const account = await pds.createAccount(name)
  await a.ctx.managers.change(authorityDid, account.did, 'owner', 'operator')
  return account
}

/** The cookie binding a login to the browser that started it, from the answer that started it. */
const loginCookie = (headers: Record<string, unknown>) =>
  /gatehouse_login=([^;]+)/.exec(String(headers['set-cookie']))![1]!

/** Login → authorization server → callback (from the same browser); returns the callback's answer. */
async function logIn(account: PdsAccount, browser?: string) {
  const started = await call('POST', '/api/v1/login', {}, { handle: account.did })
  if (started.status !== 200) throw new Error(`login: ${JSON.stringify(started.json)}`)
  const back = await pds.signIn(started.json.url as string, account)
  const binding = browser ?? loginCookie(started.headers)
  return call('GET', `/oauth/callback${back.search}`, { cookie: `gatehouse_login=${binding}` })
}

/** A manager's session cookie and CSRF token, logged in through the whole flow. */
async function session(account: PdsAccount) {
  const res = await logIn(account)
  const set = String(res.headers['set-cookie'])
  const cookie = /gatehouse_session=([^;]+)/.exec(set)![1]!
  const me = await call('GET', '/api/v1/session', { cookie: `gatehouse_session=${cookie}` })
  return { res, cookie, csrf: me.json.csrfToken as string, me }
}
const withCookie = (cookie: string, csrf?: string): Headers => ({
  cookie: `gatehouse_session=${cookie}`,
  ...(csrf === undefined ? {} : { 'x-csrf-token': csrf }),
})

t.test('serves its client metadata and only the public part of its key', async (t) => {
  const meta = await call('GET', '/oauth/client-metadata.json')
  t.match(meta.json, {
    client_id: `${publicUrl}/oauth/client-metadata.json`,
    redirect_uris: [`${publicUrl}/oauth/callback`],
    jwks_uri: `${publicUrl}/oauth/jwks.json`,
    token_endpoint_auth_method: 'private_key_jwt',
    dpop_bound_access_tokens: true,
    scope: 'atproto',
  })
  const jwks = await call('GET', '/oauth/jwks.json')
  const keys = jwks.json.keys as Record<string, unknown>[]
  t.equal(keys.length, 1)
  t.match(keys[0], { kty: 'EC', crv: 'P-256', kid: String })
  t.notOk('d' in keys[0]!, 'no private part')
  const rows = await a.ctx.db.prisma.authorityKey.findMany({ where: { purpose: 'oauth_client' } })
  t.equal(rows.length, 1, 'one sealed key row')
  t.notOk(Buffer.from(rows[0]!.secretEnc).includes(Buffer.from(String(keys[0]!.x), 'base64url')))
})

t.test('logs a manager in: callback sets the cookie, the session names the DID', async (t) => {
  const alice = await manager('alice')
  const s = await session(alice)
  t.equal(s.res.status, 303)
  t.equal(s.res.headers.location, '/', 'a logged-in manager lands on the dashboard')
  const set = String(s.res.headers['set-cookie'])
  t.match(set, /HttpOnly/)
  t.match(set, /SameSite=Lax/)
  t.match(set, /Path=\//)
  t.notMatch(set, /Secure/, 'not Secure in test mode')
  t.equal(s.me.status, 200)
  t.equal(s.me.json.did, alice.did)
  t.match(s.me.json.csrfToken, /^[A-Za-z0-9_-]{43}$/)
  const row = await a.ctx.db.prisma.managerSession.findFirst({ where: { did: alice.did } })
  t.not(row!.id, s.cookie, 'only a hash of the cookie is stored')
  t.equal(row!.id.length, 64)
  const states = await a.ctx.db.prisma.oauthStore.findMany({ where: { kind: 'session' } })
  t.ok(
    states.some((r) => r.key === alice.did),
    'the OAuth session is kept',
  )
  t.notOk(
    states.some((r) => Buffer.from(r.value).includes(Buffer.from('"refresh_token"'))),
    'OAuth values are sealed',
  )
})

t.test('starts a login only for a handle or DID; GET /login answers 302', async (t) => {
  const res = await call(
    'GET',
    `/login?handle=${encodeURIComponent('did:plc:aaaaaaaaaaaaaaaaaaaaaaaa')}`,
  )
  t.equal(res.status, 400, 'an unknown DID cannot start a login')
  t.match(res.json, { error: 'LoginFailed', message: String })
  for (const handle of ['https://evil.example.com', '', 'no-dots', 'did:plc:']) {
    const bad = await call('POST', '/api/v1/login', {}, { handle })
    t.equal(bad.status, 400, `refuses ${JSON.stringify(handle)}`)
    t.match(bad.json, { error: 'InvalidRequest' })
  }
  const bob = await manager('bob')
  const ok = await call('GET', `/login?handle=${encodeURIComponent(bob.did)}`)
  t.equal(ok.status, 302)
  t.match(String(ok.headers.location), new RegExp(`^${pds.url}/oauth/authorize\\?`))
})

t.test('any process finishes a login another started, and serves its session', async (t) => {
  const other = await TestArbiter.create(t, {
    database: a.database,
    dataDir: a.dataDir,
    env: { GATEHOUSE_PUBLIC_URL: publicUrl, GATEHOUSE_PLC_URL: plc.url },
  })
  const keys = await Promise.all(
    [a, other].map((x) =>
      x.ctx.authorities.serviceKey(x.ctx.cfg.service.did, 'oauth_client', 'p256'),
    ),
  )
  t.equal(keys[0]!.did(), keys[1]!.did(), 'one client key for both')
  const kim = await manager('kim')
  const started = await request(`${other.url}/api/v1/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ handle: kim.did }),
  })
  const { url } = (await started.body.json()) as { url: string }
  const back = await pds.signIn(url, kim)
  const res = await call('GET', `/oauth/callback${back.search}`, {
    cookie: `gatehouse_login=${loginCookie(started.headers)}`,
  })
  t.equal(res.status, 303, 'the first process finishes it')
  const cookie = /gatehouse_session=([^;]+)/.exec(String(res.headers['set-cookie']))![1]!
  const me = await request(`${other.url}/api/v1/session`, { headers: withCookie(cookie) })
  t.equal(me.statusCode, 200)
  t.match(await me.body.json(), { did: kim.did })
})

t.test('a login finished in another browser does not become its session', async (t) => {
  const mallory = await manager('mallory')
  for (const browser of ['', 'x'.repeat(32)]) {
    const res = await logIn(mallory, browser)
    t.equal(res.status, 400)
    t.match(res.json, { error: 'LoginFailed', message: /another browser/ })
    t.notMatch(String(res.headers['set-cookie']), /gatehouse_session=[^;]/)
  }
  t.equal(await a.ctx.db.prisma.managerSession.count({ where: { did: mallory.did } }), 0)
})

t.test('refuses a login by a DID that manages nothing', async (t) => {
  const carol = await pds.createAccount('carol')
  const res = await logIn(carol)
  t.equal(res.status, 403)
  t.match(res.json, { error: 'NotAManager', message: String })
  t.notMatch(String(res.headers['set-cookie']), /gatehouse_session=[^;]/, 'no session cookie')
  t.equal(await a.ctx.db.prisma.managerSession.count({ where: { did: carol.did } }), 0)
  const kept = await a.ctx.db.prisma.oauthStore.count({
    where: { kind: 'session', key: carol.did },
  })
  t.equal(kept, 0, 'its OAuth session is given back')
})

t.test('a cookie that is not a session gets 401', async (t) => {
  for (const cookie of ['nonsense', 'A'.repeat(43), '']) {
    const res = await call('GET', '/api/v1/session', withCookie(cookie))
    t.equal(res.status, 401)
    t.same(res.json, { error: 'AuthenticationRequired', message: 'Log in first' })
  }
  const none = await call('GET', '/api/v1/session')
  t.equal(none.status, 401)
})

t.test('a session ends after the idle period, and activity keeps it alive', async (t) => {
  const dave = await manager('dave')
  const s = await session(dave)
  a.clock.advance(DAY_MS - HOUR_MS)
  t.equal((await call('GET', '/api/v1/session', withCookie(s.cookie))).status, 200, 'touched')
  a.clock.advance(DAY_MS - HOUR_MS)
  t.equal((await call('GET', '/api/v1/session', withCookie(s.cookie))).status, 200, 'still alive')
  a.clock.advance(DAY_MS)
  const res = await call('GET', '/api/v1/session', withCookie(s.cookie))
  t.equal(res.status, 401, 'idle a whole day')
  t.equal(await a.ctx.db.prisma.managerSession.count({ where: { did: dave.did } }), 0)
})

t.test('a session ends at its absolute expiry, however active', async (t) => {
  const erin = await manager('erin')
  const s = await session(erin)
  t.equal(
    new Date(s.me.json.expiresAt as string).getTime(),
    a.clock.nowMs() + 30 * DAY_MS,
    'thirty days by default',
  )
  const expiresAtMs = new Date(s.me.json.expiresAt as string).getTime()
  while (a.clock.nowMs() + DAY_MS - HOUR_MS < expiresAtMs) {
    a.clock.advance(DAY_MS - HOUR_MS)
    const res = await call('GET', '/api/v1/session', withCookie(s.cookie))
    if (res.status !== 200) t.fail(`ended early, at ${a.clock.now().toISOString()}`)
  }
  a.clock.set(expiresAtMs)
  t.equal((await call('GET', '/api/v1/session', withCookie(s.cookie))).status, 401)
})

t.test('a stolen cookie without its CSRF token cannot log out', async (t) => {
  const frank = await manager('frank')
  const s = await session(frank)
  for (const csrf of [undefined, 'x'.repeat(43), s.csrf.slice(1)]) {
    const res = await call('POST', '/api/v1/logout', withCookie(s.cookie, csrf))
    t.equal(res.status, 403)
    t.match(res.json, { error: 'InvalidCsrfToken', message: String })
  }
  const everywhere = await call('POST', '/api/v1/logout-everywhere', withCookie(s.cookie))
  t.equal(everywhere.status, 403)
  t.equal((await call('GET', '/api/v1/session', withCookie(s.cookie))).status, 200, 'still alive')
  t.equal((await call('POST', '/api/v1/logout', {})).status, 401, 'no cookie: 401')
})

t.test(
  'a logged-in manager uses the REST API with the cookie; changes need its CSRF token',
  async (t) => {
    const gina = await manager('gina')
    const s = await session(gina)
    t.match(await call('GET', '/api/v1/me', withCookie(s.cookie)), {
      status: 200,
      json: { did: gina.did, via: 'session', authorities: [{ did: authorityDid, role: 'owner' }] },
    })
    const spaces = `/api/v1/authorities/${encodeURIComponent(authorityDid)}/spaces`
    const body = { spaceType: 'com.example.forum', skey: 'gina', preset: 'members-only' }
    for (const csrf of [undefined, 'x'.repeat(43)]) {
      t.match(await call('POST', spaces, withCookie(s.cookie, csrf), body), {
        status: 403,
        json: { error: 'InvalidCsrfToken' },
      })
    }
    const made = await call('POST', spaces, withCookie(s.cookie, s.csrf), body)
    t.match(made, {
      status: 201,
      json: { uri: `at://${authorityDid}/space/com.example.forum/gina` },
    })
    t.equal((await call('POST', '/api/v1/logout', withCookie(s.cookie, s.csrf))).status, 204)
    t.match(await call('GET', '/api/v1/me', withCookie(s.cookie)), { status: 401 })
  },
)

t.test('logout ends this session only', async (t) => {
  const grace = await manager('grace')
  const one = await session(grace)
  const two = await session(grace)
  const res = await call('POST', '/api/v1/logout', withCookie(one.cookie, one.csrf))
  t.equal(res.status, 204)
  t.match(String(res.headers['set-cookie']), /gatehouse_session=;.*Max-Age=0/)
  t.equal((await call('GET', '/api/v1/session', withCookie(one.cookie))).status, 401)
  t.equal((await call('GET', '/api/v1/session', withCookie(two.cookie))).status, 200)
})

t.test(
  'logout everywhere ends every session of the DID and revokes the OAuth session',
  async (t) => {
    const heidi = await manager('heidi')
    const ivan = await manager('ivan')
    const one = await session(heidi)
    const two = await session(heidi)
    const other = await session(ivan)
    const res = await call('POST', '/api/v1/logout-everywhere', withCookie(one.cookie, one.csrf))
    t.equal(res.status, 200)
    t.same(res.json, { ended: 2 })
    t.equal((await call('GET', '/api/v1/session', withCookie(one.cookie))).status, 401)
    t.equal((await call('GET', '/api/v1/session', withCookie(two.cookie))).status, 401)
    t.equal((await call('GET', '/api/v1/session', withCookie(other.cookie))).status, 200)
    const kept = await a.ctx.db.prisma.oauthStore.count({
      where: { kind: 'session', key: heidi.did },
    })
    t.equal(kept, 0, 'OAuth session revoked and forgotten')
  },
)

t.test('the janitor prunes expired sessions and unfinished logins', async (t) => {
  const judy = await manager('judy')
  await session(judy)
  const started = await call('POST', '/api/v1/login', {}, { handle: judy.did })
  t.equal(started.status, 200)
  t.ok(await a.ctx.db.prisma.oauthStore.count({ where: { kind: 'state' } }))
  a.clock.advance(31 * DAY_MS)
  const pruned = await a.ctx.janitor.run()
  t.ok(pruned.sessions! + pruned.idleSessions! >= 1)
  t.equal(await a.ctx.db.prisma.managerSession.count({ where: { did: judy.did } }), 0)
  t.equal(await a.ctx.db.prisma.oauthStore.count(), 0)
})

t.test('without an https public URL, login is unavailable rather than broken', async (t) => {
  const local = await TestArbiter.create(t, { env: { GATEHOUSE_PLC_URL: plc.url } })
  for (const [method, path] of [
    ['GET', '/oauth/client-metadata.json'],
    ['GET', '/login?handle=alice.example.com'],
  ] as const) {
    const res = await request(`${local.url}${path}`, { method })
    t.equal(res.statusCode, 503, path)
    t.match(await res.body.json(), { error: 'LoginUnavailable', message: String })
  }
})

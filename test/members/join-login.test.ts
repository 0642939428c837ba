/**
 * An invitee accepts an invite by logging in with their atproto account from the invite's link
 * (`/join/{code}`), and a user asks to join from a space's join page (`/request-join`), against a real authorization server (@atproto/pds on loopback): the callback
 * adds them through the member oplog (or makes their request) and makes no session, so the login can never manage anything;
 * a manager's own login afterwards is not mistaken for an invitee's.
 */
import t from 'tap'
import { OPERATOR } from '../../src/audit/audit-log.js'
import { request } from 'undici'
import { loginWorld, type PdsAccount } from '../_helpers/oauth.js'
import { MEMBERS_ONLY } from '../_helpers/spaces.js'

const { pds, a, authorityDid } = await loginWorld(t)
const space = await a.ctx.spaces.create({
  authority: authorityDid,
  spaceType: 'com.example.forum',
  skey: 'club',
  ...MEMBERS_ONLY,
})

async function get(path: string, cookie?: string) {
  const res = await request(`${a.url}${path}`, { headers: cookie ? { cookie } : {} })
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() }
}

const cookieValue = (headers: Record<string, unknown>, name: string) =>
  new RegExp(`${name}=([^;]*)`).exec([headers['set-cookie']].flat().join('\n'))?.[1]

/** From the invite's link, through the authorization server, back to the callback. */
async function joinByLogin(code: string, account: PdsAccount) {
  const page = await get(`/join/${code}`)
  if (page.status !== 200) throw new Error(`join page: ${page.status}`)
  return loginFrom(`/join/${code}/login?handle=${encodeURIComponent(account.did)}`, account)
}

/** A join page's login, through the authorization server, back to the callback. */
async function loginFrom(path: string, account: PdsAccount) {
  const started = await get(path)
  if (started.status !== 302) throw new Error(`join login: ${started.text}`)
  const back = await pds.signIn(String(started.headers.location), account)
  const cookies = ['gatehouse_login', 'gatehouse_join']
    .map((name) => `${name}=${cookieValue(started.headers, name)}`)
    .join('; ')
  return get(`/oauth/callback${back.search}`, cookies)
}

const invite = (opts: { maxUses?: number | null; expiresAt?: Date } = {}) =>
  a.ctx.admission.createInvite(
    space,
    {
      write: false,
      maxUses: opts.maxUses === undefined ? 1 : opts.maxUses,
      expiresAt: opts.expiresAt,
    },
    OPERATOR,
  )

t.test('an invitee logs in from the link and becomes a member, with no session', async (t) => {
  const { code } = await invite()
  const page = await get(`/join/${code}`)
  t.match(page.headers['content-type'], /text\/html/)
  t.match(page.text, `action="/join/${code}/login"`)
  t.equal(page.headers['cache-control'], 'no-store')

  const dana = await pds.createAccount('dana')
  const res = await joinByLogin(code, dana)
  t.equal(res.status, 200, res.text)
  t.match(res.text, /is now a member/)
  t.notOk(cookieValue(res.headers, 'gatehouse_session'), 'no session cookie')
  t.equal(await a.ctx.db.prisma.managerSession.count({ where: { did: dana.did } }), 0)
  const kept = await a.ctx.db.prisma.oauthStore.count({ where: { kind: 'session', key: dana.did } })
  t.equal(kept, 0, 'its OAuth tokens are given back')
  const { ops } = await a.ctx.spaces.members.ops(space.uri, undefined, 10)
  t.match(ops, [{ op: 'add', did: dana.did, read: true, write: false }])
  t.notOk(
    a.logs.lines.some((l) => l.includes(code)),
    'the code is never logged',
  )
})

t.test('a used-up invite is refused at the callback', async (t) => {
  const { code } = await invite({ maxUses: 1 })
  await joinByLogin(code, await pds.createAccount('erin'))
  const res = await joinByLogin(code, await pds.createAccount('finn'))
  t.equal(res.status, 400)
  t.match(JSON.parse(res.text), { error: 'InviteExhausted' })
})

t.test('a manager’s login after an invitee’s is a manager’s login', async (t) => {
  const { code } = await invite()
  const gus = await pds.createAccount('gus')
  await a.ctx.managers.change(authorityDid, gus.did, 'owner', 'operator')
  // The invite link started a login that was never finished; then gus logs in as a manager.
  await get(`/join/${code}/login?handle=${encodeURIComponent(gus.did)}`)
  const started = await get(`/login?handle=${encodeURIComponent(gus.did)}`)
  t.equal(cookieValue(started.headers, 'gatehouse_join'), '', 'the invite cookie is cleared')
  const back = await pds.signIn(String(started.headers.location), gus)
  const res = await get(
    `/oauth/callback${back.search}`,
    `gatehouse_login=${cookieValue(started.headers, 'gatehouse_login')}`,
  )
  t.equal(res.status, 303)
  t.ok(cookieValue(res.headers, 'gatehouse_session'), 'a manager’s session')
  t.notOk(await a.ctx.spaces.members.isMember(space.uri, gus.did, 'read'), 'and no membership')
})

t.test('a path that cannot be an invite code is 404', async (t) => {
  t.equal((await get('/join/not%20a%20code')).status, 404)
})

t.test('a join login sent from another site is refused; from our page it starts', async (t) => {
  const { code } = await invite()
  const handle = `?handle=${encodeURIComponent((await pds.createAccount('zed')).did)}`
  for (const [path, site, status] of [
    [`/join/${code}/login${handle}`, 'cross-site', 403],
    [`/join/${code}/login${handle}`, 'same-site', 403],
    [`/request-join/login${handle}&space=${encodeURIComponent(space.uri)}`, 'cross-site', 403],
    [`/join/${code}/login${handle}`, 'same-origin', 302],
    [`/join/${code}/login${handle}`, 'none', 302],
  ] as const) {
    const res = await request(`${a.url}${path}`, { headers: { 'sec-fetch-site': site } })
    await res.body.text()
    t.equal(res.statusCode, status, `${site}: ${status}`)
  }
})

t.test('a user asks to join by logging in from the join page', async (t) => {
  const hana = await pds.createAccount('hana')
  const ask = (message: string) =>
    `/request-join/login?${new URLSearchParams({ space: space.uri, handle: hana.did, message })}`
  const closed = await loginFrom(ask('hello'), hana)
  t.match(JSON.parse(closed.text), { error: 'JoinRequestsClosed' })

  await a.ctx.admission.setJoinRequestsOpen(space.uri, true, OPERATOR)
  const page = await get(`/request-join?space=${encodeURIComponent(space.uri)}`)
  t.match(page.text, 'action="/request-join/login"')
  const res = await loginFrom(ask('I organise the Thursday games'), hana)
  t.equal(res.status, 200, res.text)
  t.match(res.text, /is pending/)
  t.notOk(cookieValue(res.headers, 'gatehouse_session'), 'no session cookie')
  t.match(await a.ctx.admission.latestRequest(space.uri, hana.did), {
    status: 'pending',
    message: /Thursday/,
  })
  t.equal((await get(`/request-join?space=nope`)).status, 400)
})

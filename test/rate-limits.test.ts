/**
 * Per-identity rate limits, through the real server: past each limit a 429 `RateLimitExceeded`
 * with a Retry-After within the minute, counted for the verified identity only (another user, app,
 * repo, service, credential holder or token is not affected), and never before authentication.
 */
import t from 'tap'
import { presentHeaders } from './_helpers/tokens.js'
import { ClientApp } from './_helpers/services.js'
import { spaceWorld, type SpaceWorld } from './_helpers/spaces.js'
import { notifier, tidAt } from './_helpers/sync.js'

type Answer = { status: number; body: Record<string, unknown>; headers?: Headers }

function refusedForRate(t: Tap, res: Answer, what: string) {
  t.equal(res.status, 429, `${what}: 429`)
  t.equal(res.body.error, 'RateLimitExceeded', what)
  if (res.headers) {
    const after = Number(res.headers.get('retry-after'))
    t.ok(after >= 1 && after <= 60, `${what}: Retry-After ${after} s`)
  }
}
type Tap = Pick<typeof t, 'equal' | 'ok'>

const limits = (env: Record<string, string>) => ({ env })

t.test('getSpaceCredential: per user DID and per attested client id', async (t) => {
  const w = await spaceWorld(
    t,
    limits({
      GATEHOUSE_CREDENTIALS_PER_USER_PER_MINUTE: '2',
      GATEHOUSE_CREDENTIALS_PER_CLIENT_PER_MINUTE: '3',
    }),
  )
  const [alice, bob, carol] = ['alice', 'bob', 'carol'].map((n) => w.user(n))
  for (const u of [alice!, bob!, carol!])
    await w.a.ctx.spaces.putMember(w.space, u.did, { read: true, write: false })
  t.equal((await w.getCredential(alice!)).status, 200)
  t.equal((await w.getCredential(alice!)).status, 200)
  const third = await w.a.fetch('/xrpc/com.atproto.space.getSpaceCredential', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{}',
  })
  t.equal(third.status, 401, 'a request without a token is refused for that, not counted')
  refusedForRate(t, await w.getCredential(alice!), 'alice’s third')
  t.equal((await w.getCredential(bob!)).status, 200, 'bob is not affected')

  const app = await ClientApp.start(t, { name: 'busy' })
  const attest = async () => app.attest({ authorityDid: w.authority.did, nowSec: w.now() })
  t.equal((await w.getCredential(bob!, { attestation: await attest() })).status, 200)
  t.equal((await w.getCredential(carol!, { attestation: await attest() })).status, 200)
  t.equal((await w.getCredential(carol!, { attestation: await attest() })).status, 200)
  refusedForRate(
    t,
    await w.getCredential(w.user('dave'), { attestation: await attest() }),
    'the app’s fourth, for a user of its own',
  )
})

t.test('notifyWrite: per repo and per repo host', async (t) => {
  const w = await spaceWorld(
    t,
    limits({
      GATEHOUSE_NOTIFY_PER_REPO_PER_MINUTE: '2',
      GATEHOUSE_NOTIFY_PER_REPO_HOST_PER_MINUTE: '4',
    }),
  )
  const notify = notifier(w)
  const writers = ['w1', 'w2', 'w3'].map((n) => w.user(n))
  for (const u of writers)
    await w.a.ctx.spaces.putMember(w.space, u.did, { read: true, write: true })
  let n = 0
  const write = (i: number) => notify(writers[i]!, { repoRev: tidAt(w.a.clock.nowMs() + ++n) })
  // A repo that writes nowhere here, though its DID document names the same PDS: refused, and
  // the host's share is not spent by it.
  const stranger = w.user('stranger')
  for (let i = 0; i < 2; i++)
    t.equal((await notify(stranger, { repoRev: tidAt(w.a.clock.nowMs() + ++n) })).status, 403)
  t.equal((await write(0)).status, 200)
  t.equal((await write(0)).status, 200)
  refusedForRate(t, (await write(0)) as Answer, 'a repo’s third')
  t.equal((await write(1)).status, 200, 'another repo on the same host')
  t.equal((await write(1)).status, 200)
  // Five so far from pds.example.com (every test identity's PDS), the third refused but counted.
  refusedForRate(t, (await write(2)) as Answer, 'the host’s sixth')
})

t.test('registerNotify per service; the REST API per token; logins per address', async (t) => {
  const w: SpaceWorld = await spaceWorld(
    t,
    limits({
      GATEHOUSE_REGISTER_NOTIFY_PER_SERVICE_PER_MINUTE: '1',
      GATEHOUSE_REST_PER_PRINCIPAL_PER_MINUTE: '2',
      GATEHOUSE_LOGINS_PER_ADDRESS_PER_MINUTE: '2',
    }),
  )
  const [member, stranger] = [w.user('member'), w.user('stranger')]
  for (const u of [member, stranger])
    await w.a.ctx.spaces.putMember(w.space, u.did, { read: true, write: false })
  const cred = await w.getCredential(member)
  const strangerCred = await w.getCredential(stranger)
  const syncer = w.web.create('syncer', {
    services: {
      atproto_space_syncer: { type: 'AtprotoSpaceSyncer', endpoint: 'http://127.0.0.1:9/' },
    },
  })
  const register = async (service: string, as = cred): Promise<Answer> => {
    const res = await w.a.fetch('/xrpc/com.atproto.space.registerNotify', {
      method: 'POST',
      headers: {
        ...presentHeaders(as.body.credential as string, w.authority.did, as.holder),
        'content-type': 'application/json',
      },
      body: JSON.stringify({ space: w.space, service }),
    })
    return {
      status: res.status,
      body: (await res.json()) as Record<string, unknown>,
      headers: res.headers,
    }
  }
  const service = `${syncer.did}#atproto_space_syncer`
  // Nothing proves a caller is the service it names: another holder naming it first, past the
  // limit, does not use up the share of the one registering it.
  t.equal((await register(service, strangerCred)).status, 200)
  refusedForRate(t, await register(service, strangerCred), 'the stranger’s second')
  t.equal((await register(service)).status, 200, 'the member’s own share is untouched')
  refusedForRate(t, await register(service), 'a second registration of the service')

  const owner = w.user('owner').did
  await w.a.ctx.managers.change(w.authority.did, owner, 'owner', 'operator')
  const token = async (name: string) =>
    (
      await w.a.ctx.tokens.create({
        authority: w.authority.did,
        createdBy: owner,
        creatorRole: 'owner',
        name,
        role: 'admin',
      })
    ).token
  const [first, second] = [await token('first'), await token('second')]
  const me = async (bearer: string): Promise<Answer> => {
    const res = await w.a.fetch('/api/v1/me', { headers: { authorization: `Bearer ${bearer}` } })
    return {
      status: res.status,
      body: (await res.json()) as Record<string, unknown>,
      headers: res.headers,
    }
  }
  t.equal((await me(first)).status, 200)
  t.equal((await me(first)).status, 200)
  refusedForRate(t, await me(first), 'a token’s third call')
  t.equal((await me(second)).status, 200, 'another token is not affected')
  t.equal((await me('gh_nope')).status, 401, 'an unknown token is refused as such')

  const login = async () => {
    const res = await w.a.fetch('/login?handle=nobody.invalid', { redirect: 'manual' })
    return {
      status: res.status,
      body: (await res.json().catch(() => ({}))) as Record<string, unknown>,
      headers: res.headers,
    }
  }
  t.not((await login()).status, 429)
  t.not((await login()).status, 429)
  refusedForRate(t, await login(), 'a third login from one address')
})

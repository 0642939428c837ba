/**
 * Generation A compatibility over real HTTP: a delegation token exchanged with a DPoP proof (RFC 9449)
 * instead of a request signature, and a DPoP-bound credential (`cnf.jkt`) presented with a proof
 * carrying `ath`. Proofs are single use; the profile can be switched off.
 */
import t from 'tap'
import { z } from 'zod'
import { accessTokenHash, DPOP_MAX_AGE_SEC, DPOP_SKEW_SEC } from '../../src/crypto/dpop.js'
import { assertCredentialFor } from '../../src/auth/credential-scope.js'
import { defineProcedure, defineQuery } from '../../src/lexicon/method.js'
import { TestArbiter, type TestLike } from '../_helpers/arbiter.js'
import { DidWebHost } from '../_helpers/identities.js'
import { dpopHolder, dpopProof } from '../_helpers/dpop.js'
import { delegationToken, spaceCredential } from '../_helpers/tokens.js'

const exchange = defineProcedure({
  nsid: 'dev.gatehouse.test.exchange',
  input: undefined,
  output: z.any(),
})
const present = defineQuery({ nsid: 'dev.gatehouse.test.present', output: z.any() })
const PUBLIC = 'http://localhost:2590'

const holder = dpopHolder
const proof = dpopProof

async function world(t: TestLike & { name: string }, env?: Record<string, string>) {
  const web = await DidWebHost.start(t)
  const a = await TestArbiter.create(t, {
    env,
    beforeListen(app, ctx) {
      app.xrpc.add(exchange, { auth: ctx.auth.delegationToken, handler: async ({ auth }) => auth })
      app.xrpc.add(present, {
        auth: ctx.auth.spaceCredential(),
        handler: async ({ auth }) => {
          assertCredentialFor(auth, auth.spaceUri)
          return auth
        },
      })
    },
  })
  const user = web.create('bob')
  const authority = web.create('club')
  return {
    a,
    user,
    authority,
    space: `at://${authority.did}/space/com.example.club/main`,
    now: a.clock.nowSec(),
  }
}

/** getSpaceCredential's auth step with a fresh delegation token and the given proof. */
async function exchangeWithProof(w: Awaited<ReturnType<typeof world>>, dpop: string) {
  const token = delegationToken({ user: w.user, space: w.space, nowSec: w.now })
  const res = await w.a.fetch('/xrpc/dev.gatehouse.test.exchange', {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, dpop },
  })
  return { status: res.status, body: await res.json() }
}

t.test(
  'a delegation token exchanged with a DPoP proof binds the credential to the proof key',
  async (t) => {
    const w = await world(t)
    const h = await holder()
    const token = delegationToken({ user: w.user, space: w.space, nowSec: w.now })
    const dpop = await proof(h, {
      htm: 'POST',
      htu: `${PUBLIC}/xrpc/dev.gatehouse.test.exchange`,
      iat: w.now,
    })
    const res = await w.a.fetch('/xrpc/dev.gatehouse.test.exchange', {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, dpop },
    })
    t.equal(res.status, 200)
    const body = (await res.json()) as Record<string, unknown>
    t.match(body, { binding: { kind: 'dpop', jkt: h.jkt } })
  },
)

t.test(
  'exchange proofs: htu is the public URL, ath is forbidden, replays are refused',
  async (t) => {
    const w = await world(t)
    const h = await holder()
    const send = (dpop: string) => exchangeWithProof(w, dpop)
    const htu = `${PUBLIC}/xrpc/dev.gatehouse.test.exchange`
    t.match(
      await send(
        await proof(h, {
          htm: 'POST',
          htu: w.a.url + '/xrpc/dev.gatehouse.test.exchange',
          iat: w.now,
        }),
      ),
      {
        status: 401,
        body: { error: 'BadDpopProof', message: 'DPoP proof "htu" does not match the request' },
      },
    )
    t.match(await send(await proof(h, { htm: 'POST', htu, iat: w.now, ath: 'x' })), {
      status: 401,
      body: { error: 'BadDpopProof' },
    })
    t.match(await send(await proof(h, { htm: 'GET', htu, iat: w.now })), {
      status: 401,
      body: { error: 'BadDpopProof' },
    })
    t.match(await send(await proof(h, { htm: 'POST', htu, iat: w.now - 120 })), {
      status: 401,
      body: { error: 'DpopProofExpired' },
    })
    const once = await proof(h, { htm: 'POST', htu, iat: w.now, jti: 'proof-1' })
    t.equal((await send(once)).status, 200)
    t.match(await send(once), {
      status: 401,
      body: { error: 'BadDpopProof', message: 'DPoP proof replayed' },
    })
  },
)

t.test(
  "proofs: an iat in the future is refused (401), and a proof's jti is held only while it could be accepted",
  async (t) => {
    const w = await world(t)
    const h = await holder()
    const htu = `${PUBLIC}/xrpc/dev.gatehouse.test.exchange`
    const send = (dpop: string) => exchangeWithProof(w, dpop)
    for (const ahead of [DPOP_SKEW_SEC + 1, 3600, 10 * 365 * 86_400]) {
      t.match(
        await send(await proof(h, { htm: 'POST', htu, iat: w.now + ahead })),
        { status: 401, body: { error: 'BadDpopProofSignature', message: /iat/ } },
        `iat ${ahead} s ahead`,
      )
    }
    const iat = w.now - 30
    t.equal((await send(await proof(h, { htm: 'POST', htu, iat, jti: 'older' }))).status, 200)
    const row = await w.a.ctx.db.prisma.replayNonce.findUnique({
      where: { namespace_nonce: { namespace: `dpop@${h.jkt}`, nonce: 'older' } },
    })
    t.equal(
      row!.expiresAt.getTime(),
      (iat + DPOP_MAX_AGE_SEC + DPOP_SKEW_SEC) * 1000,
      'held until the proof is too old to be accepted, no longer',
    )
  },
)

t.test('a DPoP-bound credential is presented with a proof carrying ath', async (t) => {
  const w = await world(t)
  const h = await holder()
  const cred = spaceCredential({
    authority: w.authority,
    space: w.space,
    nowSec: w.now,
    cnf: { jkt: h.jkt },
  })
  const htu = `${PUBLIC}/xrpc/dev.gatehouse.test.present`
  const get = async (headers: Record<string, string>) => {
    const res = await w.a.fetch('/xrpc/dev.gatehouse.test.present', { headers })
    return { status: res.status, body: await res.json() }
  }
  const ok = await get({
    authorization: `DPoP ${cred}`,
    dpop: await proof(h, { htm: 'GET', htu, iat: w.now, ath: accessTokenHash(cred) }),
  })
  t.match(ok, { status: 200, body: { binding: { kind: 'dpop', jkt: h.jkt }, audience: undefined } })
  t.match(await get({ authorization: `DPoP ${cred}` }), {
    status: 401,
    body: { error: 'MissingDpopProof' },
  })
  t.match(
    await get({
      authorization: `DPoP ${cred}`,
      dpop: await proof(h, { htm: 'GET', htu, iat: w.now }),
    }),
    {
      status: 401,
      body: { error: 'BadDpopProof', message: 'DPoP proof "ath" does not match the credential' },
    },
  )
  const other = await holder()
  t.match(
    await get({
      authorization: `DPoP ${cred}`,
      dpop: await proof(other, { htm: 'GET', htu, iat: w.now, ath: accessTokenHash(cred) }),
    }),
    { status: 401, body: { error: 'DpopKeyMismatch' } },
  )
  t.match(
    await get({ authorization: `Atproto-Space ${cred}` }),
    { status: 401, body: { error: 'BadJwtCnf' } },
    'a jkt-bound credential cannot be presented the generation C way',
  )
})

t.test('with GATEHOUSE_ACCEPT_DPOP=false, only request signatures count', async (t) => {
  const w = await world(t, { GATEHOUSE_ACCEPT_DPOP: 'false' })
  const h = await holder()
  const token = delegationToken({ user: w.user, space: w.space, nowSec: w.now })
  const dpop = await proof(h, {
    htm: 'POST',
    htu: `${PUBLIC}/xrpc/dev.gatehouse.test.exchange`,
    iat: w.now,
  })
  const res = await w.a.fetch('/xrpc/dev.gatehouse.test.exchange', {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, dpop },
  })
  t.equal(res.status, 401)
  t.match(await res.json(), { error: 'BadSpaceSignature' })
  const cred = spaceCredential({
    authority: w.authority,
    space: w.space,
    nowSec: w.now,
    cnf: { jkt: h.jkt },
  })
  const pres = await w.a.fetch('/xrpc/dev.gatehouse.test.present', {
    headers: { authorization: `DPoP ${cred}`, dpop },
  })
  t.match(await pres.json(), { error: 'MissingJwt' })
})

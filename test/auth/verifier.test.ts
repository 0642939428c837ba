/**
 * Request authentication through the real HTTP server, one rule per test: delegation tokens with
 * exchange signatures, space credentials with presentation signatures, service auth. Each test makes
 * a valid request and breaks exactly one thing; the answer must carry the contract's error name and
 * status (401), and a single-use token must stay single use across restarts and processes.
 */
import t from 'tap'
import { z } from 'zod'
import { assertCredentialFor } from '../../src/auth/credential-scope.js'
import { defineProcedure, defineQuery } from '../../src/lexicon/method.js'
import {
  CLOCK_SKEW_SEC,
  createSpaceToken,
  MAX_DELEGATION_TTL_SEC,
} from '../../src/crypto/space-token.js'
import { MAX_SERVICE_JWT_TTL_SEC } from '../../src/crypto/service-auth.js'
import { signJws } from '../../src/crypto/jws.js'
import { signRequest } from '../../src/crypto/request-signature.js'
import { Keypair } from '../../src/crypto/keypair.js'
import { TestArbiter, type TestLike } from '../_helpers/arbiter.js'
import { DidWebHost, type WebIdentity } from '../_helpers/identities.js'
import { highS, rewrite, tamperSignature } from '../_helpers/tamper.js'
import { registerAuthority } from '../_helpers/spaces.js'
import {
  delegationToken,
  exchangeHeaders,
  newHolderKey,
  presentHeaders,
  serviceJwt,
  spaceCredential,
} from '../_helpers/tokens.js'

const exchange = defineProcedure({
  nsid: 'dev.gatehouse.test.exchange',
  input: undefined,
  output: z.any(),
})
const present = defineQuery({ nsid: 'dev.gatehouse.test.present', output: z.any() })
const service = defineProcedure({
  nsid: 'dev.gatehouse.test.service',
  input: undefined,
  output: z.any(),
})

interface World {
  a: TestArbiter
  web: DidWebHost
  user: WebIdentity
  authority: WebIdentity
  space: string
  now: number
  post(headers: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }>
  get(headers: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }>
  callService(
    headers: Record<string, string>,
  ): Promise<{ status: number; body: Record<string, unknown> }>
}

async function world(
  t: TestLike & { name: string },
  opts: { env?: Record<string, string>; database?: TestArbiter['database'] } = {},
): Promise<World> {
  const web = await DidWebHost.start(t)
  const a = await TestArbiter.create(t, {
    env: opts.env,
    database: opts.database,
    beforeListen(app, ctx) {
      app.xrpc.add(exchange, { auth: ctx.auth.delegationToken, handler: async ({ auth }) => auth })
      app.xrpc.add(present, {
        auth: ctx.auth.spaceCredential(),
        handler: async ({ auth }) => {
          assertCredentialFor(auth, auth.spaceUri)
          return auth
        },
      })
      app.xrpc.add(service, {
        auth: ctx.auth.serviceAuth('com.atproto.space.notifyWrite'),
        handler: async ({ auth }) => auth,
      })
    },
  })
  const user = web.create('alice')
  const authority = web.create('forum')
  const slug =
    t.name
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .slice(0, 40)
      .replace(/^-+|-+$/g, '') || 'space'
  const space = `at://${authority.did}/space/com.example.forum/${slug}`
  const call =
    (path: string, method: 'GET' | 'POST') => async (headers: Record<string, string>) => {
      const res = await a.fetch(path, { method, headers })
      return { status: res.status, body: (await res.json()) as Record<string, unknown> }
    }
  return {
    a,
    web,
    user,
    authority,
    space,
    now: a.clock.nowSec(),
    post: call('/xrpc/dev.gatehouse.test.exchange', 'POST'),
    get: call('/xrpc/dev.gatehouse.test.present', 'GET'),
    callService: call('/xrpc/dev.gatehouse.test.service', 'POST'),
  }
}

const refused = (name: string) => ({ status: 401, body: { error: name } })

/** Another Gatehouse on the same database (a second process, or this one restarted), clock in step. */
async function exchangeProbe(t: TestLike, w: World): Promise<TestArbiter> {
  const other = await TestArbiter.create(t, {
    database: w.a.database,
    beforeListen(app, ctx) {
      app.xrpc.add(exchange, { auth: ctx.auth.delegationToken, handler: async ({ auth }) => auth })
    },
  })
  other.clock.set(w.a.clock.nowMs())
  return other
}

t.test(
  'delegation: a valid token with an exchange signature is accepted, bound to the signing key',
  async (t) => {
    const w = await world(t)
    const holder = newHolderKey()
    const res = await w.post(
      exchangeHeaders(delegationToken({ user: w.user, space: w.space, nowSec: w.now }), holder),
    )
    t.equal(res.status, 200)
    t.match(res.body, {
      type: 'delegation_token',
      iss: w.user.did,
      spaceUri: w.space,
      binding: { kind: 'signature', keyDid: holder.did() },
    })
  },
)

t.test(
  'delegation: single use — replayed, after a restart, and against a second process',
  async (t) => {
    const w = await world(t)
    const token = delegationToken({ user: w.user, space: w.space, nowSec: w.now })
    t.equal((await w.post(exchangeHeaders(token, newHolderKey()))).status, 200)
    t.match(await w.post(exchangeHeaders(token, newHolderKey())), {
      status: 401,
      body: { error: 'JwtReplayed', message: 'delegation token has already been used' },
    })

    // A second Gatehouse on the same database (another process, or this one after a restart).
    const second = await exchangeProbe(t, w)
    const res = await second.fetch('/xrpc/dev.gatehouse.test.exchange', {
      method: 'POST',
      headers: exchangeHeaders(token, newHolderKey()),
    })
    t.equal(res.status, 401)
    t.match(await res.json(), { error: 'JwtReplayed' })

    await w.a.stop()
    const restarted = await exchangeProbe(t, w)
    const again = await restarted.fetch('/xrpc/dev.gatehouse.test.exchange', {
      method: 'POST',
      headers: exchangeHeaders(token, newHolderKey()),
    })
    t.match(await again.json(), { error: 'JwtReplayed' }, 'still refused after a restart')
  },
)

t.test('delegation: a bad request signature does not spend the token', async (t) => {
  const w = await world(t)
  const token = delegationToken({ user: w.user, space: w.space, nowSec: w.now })
  const headers = exchangeHeaders(token, newHolderKey())
  headers.signature = headers.signature!.replace(
    /:(.)/,
    (_m, c: string) => `:${c === 'A' ? 'B' : 'A'}`,
  )
  t.match(await w.post(headers), refused('BadSpaceSignature'))
  t.equal(
    (await w.post(exchangeHeaders(token, newHolderKey()))).status,
    200,
    'the owner can still use it',
  )
})

t.test('delegation: expiry honours 5 s of skew', async (t) => {
  const w = await world(t)
  const justInside = delegationToken({
    user: w.user,
    space: w.space,
    nowSec: w.now - 64,
    exp: w.now - 4,
  })
  t.equal((await w.post(exchangeHeaders(justInside, newHolderKey()))).status, 200)
  const expired = delegationToken({
    user: w.user,
    space: w.space,
    nowSec: w.now - 65,
    exp: w.now - 5,
  })
  t.match(await w.post(exchangeHeaders(expired, newHolderKey())), {
    status: 401,
    body: { error: 'JwtExpired', message: 'token expired' },
  })
})

t.test(
  'delegation: absurd and overlong times are refused (401, never 500) and leave no single-use record',
  async (t) => {
    const w = await world(t)
    const token = (iat: number | undefined, exp: number) =>
      createSpaceToken(
        'delegation',
        {
          iss: w.user.did,
          sub: w.space,
          aud: `${w.authority.did}#atproto_space_host`,
          ...(iat === undefined ? {} : { iat }),
          exp,
        },
        w.user.key,
      )
    const cases: [string, string, string][] = [
      ['exp beyond what a Date holds', token(w.now, 8.64e12), 'lifetime exceeds 300 s'],
      ['exp in the year 9999', token(w.now, Date.UTC(9999, 11, 31) / 1000), 'lifetime'],
      ['exp ten years ahead', token(w.now, w.now + 10 * 365 * 86_400), 'lifetime'],
      ['iat an hour in the future', token(w.now + 3600, w.now + 3660), 'not yet valid'],
      ['no iat, exp far ahead', token(undefined, 8.64e12), 'lifetime'],
      ['exp just over the bound', token(w.now, w.now + MAX_DELEGATION_TTL_SEC + 1), 'lifetime'],
    ]
    for (const [name, bad, message] of cases) {
      t.match(
        await w.post(exchangeHeaders(bad, newHolderKey())),
        { status: 401, body: { error: 'BadJwt', message: new RegExp(message) } },
        name,
      )
    }
    const nonces = () =>
      w.a.ctx.db.prisma.replayNonce.findMany({ where: { namespace: `delegation@${w.user.did}` } })
    t.same(await nonces(), [], 'nothing recorded for refused tokens')

    const longest = token(w.now, w.now + MAX_DELEGATION_TTL_SEC)
    t.equal((await w.post(exchangeHeaders(longest, newHolderKey()))).status, 200, 'at the bound')
    const [kept] = await nonces()
    t.ok(
      kept!.expiresAt.getTime() <= (w.now + MAX_DELEGATION_TTL_SEC + CLOCK_SKEW_SEC) * 1000,
      'its jti is held no longer than the bounded lifetime',
    )
    const skewed = token(w.now + CLOCK_SKEW_SEC, w.now + CLOCK_SKEW_SEC + 60)
    t.equal(
      (await w.post(exchangeHeaders(skewed, newHolderKey()))).status,
      200,
      'an iat within the clock skew is fine',
    )
  },
)

t.test('delegation: wrong typ, alg none, HS256 and a foreign kid are refused', async (t) => {
  const w = await world(t)
  const good = delegationToken({ user: w.user, space: w.space, nowSec: w.now })
  const wrongTyp = createSpaceToken(
    'credential',
    {
      iss: w.user.did,
      sub: w.space,
      aud: `${w.authority.did}#atproto_space_host`,
      iat: w.now,
      exp: w.now + 60,
      cnf: { kid: newHolderKey().did() },
    },
    w.user.key,
  )
  t.match(await w.post(exchangeHeaders(wrongTyp, newHolderKey())), refused('BadJwtType'))
  const none = rewrite(good, { header: (h) => (h.alg = 'none') }).replace(/\.[^.]*$/, '.')
  t.match(await w.post(exchangeHeaders(none, newHolderKey())), refused('BadJwt'))
  const hs = rewrite(good, { header: (h) => (h.alg = 'HS256') })
  t.match(await w.post(exchangeHeaders(hs, newHolderKey())), refused('BadJwt'))
  const es256 = rewrite(good, { header: (h) => (h.alg = 'ES256') })
  t.match(
    await w.post(exchangeHeaders(es256, newHolderKey())),
    refused('BadJwtSignature'),
    'alg naming the other curve',
  )
  const foreignKid = delegationToken({ user: w.user, space: w.space, nowSec: w.now, kid: '#other' })
  t.match(await w.post(exchangeHeaders(foreignKid, newHolderKey())), refused('BadJwt'))
  const absentKid = delegationToken({
    user: w.user,
    space: w.space,
    nowSec: w.now,
    kid: '#atproto_space',
  })
  t.match(
    await w.post(exchangeHeaders(absentKid, newHolderKey())),
    refused('BadJwtIss'),
    'kid not in the DID document',
  )
})

t.test('delegation: audience must be the space authority #atproto_space_host', async (t) => {
  const w = await world(t)
  for (const aud of [
    'did:web:elsewhere.example#atproto_space_host',
    w.authority.did,
    `${w.authority.did}#atproto_pds`,
  ]) {
    const token = delegationToken({ user: w.user, space: w.space, nowSec: w.now, aud })
    t.match(
      await w.post(exchangeHeaders(token, newHolderKey())),
      {
        status: 401,
        body: {
          error: 'BadJwtAudience',
          message: 'delegation token audience does not match the space authority',
        },
      },
      aud,
    )
  }
})

t.test('delegation: sub must be a space, iss a resolvable DID', async (t) => {
  const w = await world(t)
  const notSpace = createSpaceToken(
    'delegation',
    {
      iss: w.user.did,
      sub: 'at://did:web:x.example/app.bsky.feed.post/1',
      aud: 'x',
      iat: w.now,
      exp: w.now + 60,
    },
    w.user.key,
  )
  t.match(await w.post(exchangeHeaders(notSpace, newHolderKey())), refused('BadJwtSub'))
  const handleIss = createSpaceToken(
    'delegation',
    {
      iss: 'alice.example',
      sub: w.space,
      aud: `${w.authority.did}#atproto_space_host`,
      iat: w.now,
      exp: w.now + 60,
    },
    w.user.key,
  )
  t.match(await w.post(exchangeHeaders(handleIss, newHolderKey())), refused('BadJwtIss'))
  const ghost = delegationToken({
    user: { did: `did:web:localhost%3A${w.web.port}:u:ghost`, key: w.user.key },
    space: w.space,
    nowSec: w.now,
  })
  t.match(await w.post(exchangeHeaders(ghost, newHolderKey())), refused('BadJwtIss'))
})

t.test('delegation: tampered, high-S and wrong-key signatures are refused', async (t) => {
  const w = await world(t)
  const good = () => delegationToken({ user: w.user, space: w.space, nowSec: w.now })
  t.match(await w.post(exchangeHeaders(tamperSignature(good()), newHolderKey())), {
    status: 401,
    body: { error: 'BadJwtSignature', message: 'invalid token signature' },
  })
  t.match(
    await w.post(exchangeHeaders(highS(good(), 'secp256k1'), newHolderKey())),
    refused('BadJwtSignature'),
    'high-S is refused on tokens',
  )
  const forged = delegationToken({
    user: { did: w.user.did, key: Keypair.generate('secp256k1') },
    space: w.space,
    nowSec: w.now,
  })
  t.match(await w.post(exchangeHeaders(forged, newHolderKey())), refused('BadJwtSignature'))
  // Both checks run at once; the token's verdict still comes first, as the contract orders them.
  const badBoth = exchangeHeaders(forged, newHolderKey())
  badBoth['signature'] = badBoth['signature']!.replace(
    /:(.)/,
    (_, c: string) => `:${c === 'A' ? 'B' : 'A'}`,
  )
  t.match(await w.post(badBoth), refused('BadJwtSignature'), 'bad token and bad exchange signature')
  const goodTokenBadSig = exchangeHeaders(good(), newHolderKey())
  goodTokenBadSig['signature'] = badBoth['signature']!
  t.match(await w.post(goodTokenBadSig), refused('BadSpaceSignature'), 'good token, bad signature')
})

t.test('delegation: oversized, garbage and missing tokens', async (t) => {
  const w = await world(t)
  const huge = delegationToken({
    user: w.user,
    space: w.space,
    nowSec: w.now,
    jti: 'x'.repeat(9000),
  })
  t.match(await w.post(exchangeHeaders(huge, newHolderKey())), refused('BadJwt'))
  t.match(await w.post(exchangeHeaders('!!!.???.***', newHolderKey())), refused('BadJwt'))
  t.match(
    await w.post(exchangeHeaders('eyJhbGciOiJFUzI1NksifQ', newHolderKey())),
    refused('BadJwt'),
  )
  t.match(await w.post({}), refused('MissingJwt'))
})

t.test('exchange signature: required, P-256, covering exactly authorization', async (t) => {
  const w = await world(t)
  const token = () => delegationToken({ user: w.user, space: w.space, nowSec: w.now })
  t.match(
    await w.post({ authorization: `Bearer ${token()}` }),
    refused('BadSpaceSignature'),
    'absent',
  )

  const k1 = Keypair.generate('secp256k1')
  const auth1 = `Bearer ${token()}`
  const list = `("authorization");keyid="${k1.did()}"`
  const base = `"authorization": ${auth1}\n"@signature-params": ${list}`
  const sig = Buffer.from(k1.sign(new TextEncoder().encode(base))).toString('base64')
  t.match(
    await w.post({
      authorization: auth1,
      'signature-input': `atproto-space=${list}`,
      signature: `atproto-space=:${sig}:`,
    }),
    refused('BadSpaceSignature'),
    'secp256k1 keyid',
  )

  const holder = newHolderKey()
  const auth2 = `Bearer ${token()}`
  const signed = signRequest({
    form: 'presentation',
    authorization: auth2,
    audience: w.authority.did,
    key: holder,
    includeKeyId: true,
  })
  t.match(
    await w.post({ authorization: auth2, 'atproto-space-audience': w.authority.did, ...signed }),
    refused('BadSpaceSignature'),
    'wrong covered components',
  )

  const auth3 = `Bearer ${token()}`
  const other = signRequest({ form: 'exchange', authorization: `Bearer ${token()}`, key: holder })
  t.match(
    await w.post({ authorization: auth3, ...other }),
    refused('BadSpaceSignature'),
    'signature over another authorization value',
  )

  const ok = exchangeHeaders(token(), holder)
  t.match(
    await w.post({ ...ok, 'signature-input': `${ok['signature-input']};alg="rsa-pss-sha512"` }),
    refused('BadSpaceSignature'),
    'other alg',
  )
  t.match(
    await w.post({ ...ok, signature: 'atproto-space=:AAAA:' }),
    refused('BadSpaceSignature'),
    'not 64 bytes',
  )
  t.match(
    await w.post({ ...ok, 'signature-input': 'atproto-space=("authorization"' }),
    refused('BadSpaceSignature'),
    'malformed structured field',
  )
  t.equal((await w.post(exchangeHeaders(token(), holder))).status, 200)
})

t.test('exchange signature: a repeated Authorization header is refused', async (t) => {
  const w = await world(t)
  const headers = exchangeHeaders(
    delegationToken({ user: w.user, space: w.space, nowSec: w.now }),
    newHolderKey(),
  )
  const { request } = await import('undici')
  const res = await request(`${w.a.url}/xrpc/dev.gatehouse.test.exchange`, {
    method: 'POST',
    headers: [...Object.entries(headers).flat(), 'authorization', headers.authorization!],
  })
  t.equal(res.statusCode, 401)
  t.match(await res.body.json(), { error: 'BadSpaceSignature' })
})

t.test('delegation: a rotated user key is picked up with one refresh', async (t) => {
  const w = await world(t)
  const first = delegationToken({ user: w.user, space: w.space, nowSec: w.now })
  t.equal((await w.post(exchangeHeaders(first, newHolderKey()))).status, 200)
  const before = w.web.hitsFor(w.user)
  w.user.rotate()
  const second = delegationToken({ user: w.user, space: w.space, nowSec: w.now })
  t.equal((await w.post(exchangeHeaders(second, newHolderKey()))).status, 200, 'new key accepted')
  t.equal(w.web.hitsFor(w.user), before + 1, 'exactly one refetch')
  const third = delegationToken({ user: w.user, space: w.space, nowSec: w.now })
  t.equal((await w.post(exchangeHeaders(third, newHolderKey()))).status, 200)
  t.equal(w.web.hitsFor(w.user), before + 1, 'then served from the cache')
})

t.test('credential: a valid presentation with the authority as audience', async (t) => {
  const w = await world(t)
  const holder = newHolderKey()
  const cred = spaceCredential({
    authority: w.authority,
    space: w.space,
    nowSec: w.now,
    cnf: { kid: holder.did() },
  })
  const res = await w.get(presentHeaders(cred, w.authority.did, holder))
  t.equal(res.status, 200)
  t.match(res.body, {
    type: 'space_credential',
    iss: w.authority.did,
    spaceUri: w.space,
    audience: w.authority.did,
  })
  t.equal(
    (await w.get(presentHeaders(cred, w.authority.did, holder, { includeKeyId: true }))).status,
    200,
    'with keyid too',
  )
  t.equal(
    (await w.get(presentHeaders(cred, w.authority.did, holder))).status,
    200,
    'credentials are reusable',
  )
})

t.test('credential: lifetime rules (not yet valid, too long, expired)', async (t) => {
  const w = await world(t)
  const holder = newHolderKey()
  const cnf = { kid: holder.did() }
  const future = spaceCredential({
    authority: w.authority,
    space: w.space,
    nowSec: w.now,
    iat: w.now + 30,
    cnf,
  })
  t.match(await w.get(presentHeaders(future, w.authority.did, holder)), {
    status: 401,
    body: { error: 'BadJwt', message: 'credential is not yet valid' },
  })
  const long = spaceCredential({
    authority: w.authority,
    space: w.space,
    nowSec: w.now,
    ttlSec: 3601,
    cnf,
  })
  t.match(await w.get(presentHeaders(long, w.authority.did, holder)), refused('BadJwt'))
  const expired = spaceCredential({
    authority: w.authority,
    space: w.space,
    nowSec: w.now,
    iat: w.now - 700,
    cnf,
  })
  t.match(await w.get(presentHeaders(expired, w.authority.did, holder)), refused('JwtExpired'))
})

t.test('credential: cnf is required, and must name a P-256 key', async (t) => {
  const w = await world(t)
  const holder = newHolderKey()
  const none = spaceCredential({ authority: w.authority, space: w.space, nowSec: w.now, cnf: null })
  t.match(await w.get(presentHeaders(none, w.authority.did, holder)), refused('BadJwtCnf'))
  const k1 = spaceCredential({
    authority: w.authority,
    space: w.space,
    nowSec: w.now,
    cnf: { kid: Keypair.generate('secp256k1').did() },
  })
  t.match(await w.get(presentHeaders(k1, w.authority.did, holder)), refused('BadJwtCnf'))
})

t.test('credential: only the space authority may issue it', async (t) => {
  const w = await world(t)
  const holder = newHolderKey()
  const byMember = spaceCredential({
    authority: w.user,
    space: w.space,
    nowSec: w.now,
    cnf: { kid: holder.did() },
  })
  t.match(await w.get(presentHeaders(byMember, w.authority.did, holder)), {
    status: 401,
    body: { error: 'BadJwtIss', message: 'space credential issuer is not the space authority' },
  })
})

t.test(
  'credential: the presentation must be signed by the bound key, for the authority',
  async (t) => {
    const w = await world(t)
    const holder = newHolderKey()
    const cred = spaceCredential({
      authority: w.authority,
      space: w.space,
      nowSec: w.now,
      cnf: { kid: holder.did() },
    })
    t.match(
      await w.get(presentHeaders(cred, w.authority.did, newHolderKey())),
      refused('BadSpaceSignature'),
      'another key',
    )
    const keyidOther = presentHeaders(cred, w.authority.did, holder)
    keyidOther['signature-input'] =
      `${keyidOther['signature-input']};keyid="${newHolderKey().did()}"`
    t.match(await w.get(keyidOther), refused('BadSpaceSignature'), 'keyid naming another key')
    t.match(
      await w.get(presentHeaders(cred, w.user.did, holder)),
      refused('BadSpaceAudience'),
      'audience another DID',
    )
    t.match(
      await w.get(presentHeaders(cred, `${w.authority.did}#atproto_space_host`, holder)),
      refused('BadSpaceAudience'),
      'audience with a fragment',
    )
    t.match(await w.get({ authorization: `Bearer ${cred}` }), {
      status: 401,
      body: { error: 'MissingJwt', message: 'missing space credential' },
    })
  },
)

t.test('credential: a revoked credential is refused until it would have expired', async (t) => {
  const w = await world(t)
  const holder = newHolderKey()
  const cred = spaceCredential({
    authority: w.authority,
    space: w.space,
    nowSec: w.now,
    cnf: { kid: holder.did() },
    jti: 'revoke-me',
  })
  t.equal((await w.get(presentHeaders(cred, w.authority.did, holder))).status, 200)
  const expiresAt = new Date((w.now + 600) * 1000)
  await w.a.ctx.db.prisma.revokedCredential.create({
    data: { space: w.space, jti: 'revoke-me', expiresAt, createdAt: w.a.clock.now() },
  })
  t.equal(
    (await w.get(presentHeaders(cred, w.authority.did, holder))).status,
    200,
    'revocation applies to a space hosted here; for any other the handler answers (SpaceNotFound)',
  )
  const [, , spaceType, skey] = w.space.slice('at://'.length).split('/')
  await registerAuthority(w.a.ctx, w.authority.did, { atproto: w.authority.key })
  await w.a.ctx.spaces.create({
    authority: w.authority.did,
    spaceType: spaceType!,
    skey: skey!,
    readPolicy: { kind: 'member-list' },
    writePolicy: { kind: 'member-list' },
    appAccess: { kind: 'open' },
  })
  t.match(await w.get(presentHeaders(cred, w.authority.did, holder)), refused('CredentialRevoked'))
  w.a.clock.advance(601_000)
  t.equal((await w.a.ctx.janitor.run()).revoked, 1)
})

t.test('credential: an #atproto_space key may sign it', async (t) => {
  const w = await world(t)
  w.authority.extraKeys.atproto_space = Keypair.generate('p256')
  const holder = newHolderKey()
  const cred = spaceCredential({
    authority: { did: w.authority.did, key: w.authority.extraKeys.atproto_space },
    space: w.space,
    nowSec: w.now,
    cnf: { kid: holder.did() },
    kid: '#atproto_space',
  })
  t.equal((await w.get(presentHeaders(cred, w.authority.did, holder))).status, 200)
})

t.test(
  'service auth: valid; wrong lxm, expired, foreign typ, bad signature refused; high-S allowed',
  async (t) => {
    const w = await world(t)
    const lxm = 'com.atproto.space.notifyWrite'
    const ok = await w.callService({
      authorization: `Bearer ${serviceJwt({ iss: w.user, aud: w.authority.did, lxm, nowSec: w.now })}`,
    })
    t.match(ok, {
      status: 200,
      body: { type: 'service_auth', iss: w.user.did, aud: w.authority.did, lxm },
    })
    const wrongLxm = serviceJwt({
      iss: w.user,
      aud: w.authority.did,
      lxm: 'com.atproto.space.registerNotify',
      nowSec: w.now,
    })
    t.match(
      await w.callService({ authorization: `Bearer ${wrongLxm}` }),
      refused('BadJwtLexiconMethod'),
    )
    const noLxm = signJws(
      { typ: 'JWT' },
      { iss: w.user.did, aud: w.authority.did, iat: w.now, exp: w.now + 60 },
      w.user.key,
    )
    t.match(
      await w.callService({ authorization: `Bearer ${noLxm}` }),
      refused('BadJwtLexiconMethod'),
    )
    const expired = serviceJwt({ iss: w.user, aud: w.authority.did, lxm, nowSec: w.now - 61 })
    t.match(await w.callService({ authorization: `Bearer ${expired}` }), {
      status: 401,
      body: { error: 'JwtExpired', message: 'jwt expired' },
    })
    const dpopTyp = signJws(
      { typ: 'dpop+jwt' },
      { iss: w.user.did, aud: w.authority.did, lxm, iat: w.now, exp: w.now + 60 },
      w.user.key,
    )
    t.match(await w.callService({ authorization: `Bearer ${dpopTyp}` }), refused('BadJwtType'))
    const good = serviceJwt({ iss: w.user, aud: w.authority.did, lxm, nowSec: w.now })
    t.match(
      await w.callService({ authorization: `Bearer ${tamperSignature(good)}` }),
      refused('BadJwtSignature'),
    )
    t.equal(
      (await w.callService({ authorization: `Bearer ${highS(good, 'secp256k1')}` })).status,
      200,
      'high-S accepted for service auth',
    )
    t.match(await w.callService({}), refused('MissingJwt'))
  },
)

t.test(
  'service auth: a lifetime over MAX_SERVICE_JWT_TTL_SEC or an iat in the future is refused',
  async (t) => {
    const w = await world(t)
    const lxm = 'com.atproto.space.notifyWrite'
    const call = (jwt: string) => w.callService({ authorization: `Bearer ${jwt}` })
    const jwt = (nowSec: number, ttlSec: number) =>
      serviceJwt({ iss: w.user, aud: w.authority.did, lxm, nowSec, ttlSec })
    for (const [name, bad] of [
      ['ten years', jwt(w.now, 10 * 365 * 86_400)],
      ['beyond what a Date holds', jwt(w.now, 8.64e12)],
      ['just over the bound', jwt(w.now, MAX_SERVICE_JWT_TTL_SEC + 1)],
      ['iat an hour ahead', jwt(w.now + 3600, 60)],
    ] as const) {
      t.match(await call(bad), refused('BadJwt'), name)
    }
    const noIat = signJws(
      { typ: 'JWT' },
      { iss: w.user.did, aud: w.authority.did, lxm, exp: w.now + 10 * 365 * 86_400 },
      w.user.key,
    )
    t.match(await call(noIat), refused('BadJwt'), 'no iat, exp ten years ahead')
    t.equal(
      (await call(jwt(w.now, MAX_SERVICE_JWT_TTL_SEC))).status,
      200,
      "an hour, the longest a PDS's getServiceAuth grants",
    )
  },
)

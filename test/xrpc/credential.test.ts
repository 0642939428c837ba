/**
 * getSpaceCredential end to end over loopback HTTP, with real peers: users and the authority as
 * did:web identities with real keys, a client app serving metadata and JWKS, a managing app answering
 * checkUserAccess. Every policy × app-access combination, every refusal with the contract's error and
 * status, and the credential itself checked against the reference's verification rules.
 */
import t from 'tap'
import {
  Keypair,
  signWithNoble,
  usesLibsecp256k1,
  verifySignature,
} from '../../src/crypto/keypair.js'
import { parseSpaceToken, verifySpaceToken } from '../../src/crypto/space-token.js'
import { verifyServiceJwt } from '../../src/crypto/service-auth.js'
import { getVerificationKey, parseDidDocument } from '../../src/identity/did-doc.js'
import type { SpacePolicy } from '../../src/policy/types.js'
import { ClientApp, MockService, unpublishedKey } from '../_helpers/services.js'
import {
  decodeToken,
  MEMBERS_ONLY,
  registerAuthority,
  spaceWorld,
  type SpaceWorld,
} from '../_helpers/spaces.js'
import { delegationToken, presentHeaders } from '../_helpers/tokens.js'

const refusal = (error: string) => ({ status: 400, body: { error } })

async function member(w: SpaceWorld, name: string, flags = { read: true, write: true }) {
  const u = w.user(name)
  await w.a.ctx.spaces.putMember(w.space, u.did, flags)
  return u
}

t.test(
  'a member gets a credential every repo host can verify, bound to the signing key',
  async (t) => {
    const w = await spaceWorld(t)
    const alice = await member(w, 'alice')
    const res = await w.getCredential(alice)
    t.equal(res.status, 200)
    t.same(Object.keys(res.body), ['credential'], 'output is the credential and nothing else')
    const credential = res.body.credential as string
    const { header, payload } = decodeToken(credential)
    t.same(header, { alg: 'ES256K', typ: 'atproto-space-credential+jwt', kid: '#atproto' })
    t.same(Object.keys(payload).sort(), ['cnf', 'exp', 'iat', 'iss', 'jti', 'sub'], 'no aud')
    t.match(payload, { iss: w.authority.did, sub: w.space, cnf: { kid: res.holder.did() } })
    t.equal((payload.exp as number) - (payload.iat as number), 600)
    t.match(payload.jti, /^[0-9a-f]{32}$/)
    // The reference's verifier rules, with the authority's published DID document.
    const doc = parseDidDocument(w.authority.did, w.web.document(w.authority))
    const parsed = parseSpaceToken('credential', credential, w.now())
    await verifySpaceToken(parsed, {
      nowSec: w.now(),
      getSigningKey: async (_i, kid) => getVerificationKey(doc, kid),
    })
    t.pass('verifies against the authority DID document')
    const issued = await w.a.ctx.db.prisma.issuedCredential.findMany({ where: { space: w.space } })
    t.match(
      issued,
      [{ jti: payload.jti, userDid: alice.did, clientId: null }],
      'issued jti recorded',
    )

    const space = await w.getSpace(credential, res.holder)
    t.equal(space.status, 200)
    t.same(space.body, {
      uri: w.space,
      readPolicy: { $type: 'com.atproto.simplespace.defs#memberListPolicy' },
      writePolicy: { $type: 'com.atproto.simplespace.defs#memberListPolicy' },
      policy: { $type: 'com.atproto.simplespace.defs#memberListPolicy' },
      appAccess: { $type: 'com.atproto.simplespace.defs#open' },
    })
  },
)

t.test('refusals burn the delegation token: retries need a fresh one', async (t) => {
  const w = await spaceWorld(t)
  const carol = w.user('carol')
  const first = await w.getCredential(carol)
  t.match(first, {
    status: 400,
    body: { error: 'UserNotAuthorized', message: 'User not authorized for this space' },
  })
  await w.a.ctx.spaces.putMember(w.space, carol.did, { read: true, write: false })
  t.match(await w.getCredential(carol, { token: first.token }), {
    status: 401,
    body: { error: 'JwtReplayed' },
  })
  t.equal((await w.getCredential(carol)).status, 200, 'a fresh token works')
})

t.test('the token subject must be the requested space', async (t) => {
  const w = await spaceWorld(t)
  const alice = await member(w, 'alice')
  const other = w.space.replace(/[^/]+$/, 'other')
  t.match(await w.getCredential(alice, { bodySpace: other }), {
    status: 400,
    body: {
      error: 'InvalidDelegationToken',
      message: 'Delegation token subject does not match requested space',
    },
  })
})

t.test(
  'spaces of authorities we do not answer for, unknown spaces and deleted spaces',
  async (t) => {
    const w = await spaceWorld(t)
    const alice = await member(w, 'alice')
    const stranger = w.user('stranger-authority')
    const foreign = `at://${stranger.did}/space/com.example.forum/x`
    t.match(await w.getCredential(alice, { space: foreign }), refusal('SpaceNotFound'))
    const unknown = w.space.replace(/[^/]+$/, 'nope')
    t.match(await w.getCredential(alice, { space: unknown }), refusal('SpaceNotFound'))
    await w.a.ctx.spaces.delete(w.space)
    t.match(await w.getCredential(alice), { status: 400, body: { error: 'SpaceDeleted' } })
    await w.a.ctx.authorities.setStatus(w.authority.did, 'deactivated')
    t.match(await w.getCredential(alice), refusal('SpaceNotFound'), 'deactivated authority')
  },
)

t.test('member-list: the read flag decides; the authority itself always passes', async (t) => {
  const w = await spaceWorld(t)
  const reader = await member(w, 'reader', { read: true, write: false })
  const writerOnly = await member(w, 'writer-only', { read: false, write: true })
  t.equal((await w.getCredential(reader)).status, 200)
  t.match(await w.getCredential(writerOnly), refusal('UserNotAuthorized'))
  t.match(await w.getCredential(w.user('nobody')), refusal('UserNotAuthorized'))
  t.equal((await w.getCredential(w.authority)).status, 200, 'the authority is never locked out')
})

t.test('each exchange is tallied per space and UTC day, issued or refused', async (t) => {
  const w = await spaceWorld(t)
  const reader = await member(w, 'reader', { read: true, write: false })
  t.equal((await w.getCredential(reader)).status, 200)
  t.equal((await w.getCredential(reader)).status, 200)
  t.match(await w.getCredential(w.user('nobody')), refusal('UserNotAuthorized'))
  const elsewhere = `at://${w.authority.did}/space/com.example.none/nothing`
  t.match(await w.getCredential(reader, { space: elsewhere }), { status: 400 })
  await w.a.ctx.tally.flush()
  const rows = await w.a.ctx.db.prisma.credentialTally.findMany()
  const day = new Date(w.now() * 1000).toISOString().slice(0, 10)
  t.same(
    rows.map((r) => ({ ...r })),
    [{ space: w.space, day, issued: 2, refused: 1, summarisedAt: null }],
    'a space not hosted here is not counted',
  )
  t.equal((await w.getCredential(reader)).status, 200)
  await w.a.ctx.tally.flush()
  t.match(
    await w.a.ctx.db.prisma.credentialTally.findMany(),
    [{ issued: 3, refused: 1 }],
    'added to',
  )
  // Flushes asked for at once (the timer's and shutdown's) run one after another, each counted once.
  const flushes: Promise<void>[] = []
  for (let i = 0; i < 3; i++) {
    w.a.ctx.tally.count(w.space, 'issued')
    flushes.push(w.a.ctx.tally.flush())
  }
  await Promise.all(flushes)
  t.match(await w.a.ctx.db.prisma.credentialTally.findMany(), [{ issued: 6, refused: 1 }])
})

t.test('a finished day’s tally goes to the audit log once, as credentials.daily', async (t) => {
  const w = await spaceWorld(t)
  const reader = await member(w, 'reader', { read: true, write: false })
  const day = new Date(w.now() * 1000).toISOString().slice(0, 10)
  t.equal((await w.getCredential(reader)).status, 200)
  t.match(await w.getCredential(w.user('nobody')), refusal('UserNotAuthorized'))
  await w.a.ctx.tally.flush()
  const daily = () =>
    w.a.ctx.audit.query({ authority: w.authority.did, action: 'credentials.daily', limit: 10 })
  await w.a.ctx.janitor.run()
  t.same(await daily(), [], 'not before the day is over')
  const midnight = Date.parse(`${day}T00:00:00Z`) + 86_400_000
  w.a.clock.set(midnight + 30_000)
  await w.a.ctx.janitor.run()
  t.same(await daily(), [], 'nor in its first minute, while its last counts may still land')
  w.a.clock.set(midnight + 61_000)
  const pruned = await w.a.ctx.janitor.run()
  t.equal(pruned.credentialDays, 1)
  t.match(await daily(), [
    { actor: 'system', space: w.space, subject: day, after: '{"issued":1,"refused":1}' },
  ])
  await w.a.ctx.janitor.run()
  t.equal((await daily()).length, 1, 'once')
  t.match(await w.a.ctx.audit.verify(w.authority.did), { ok: true })
  w.a.clock.set(midnight + 91 * 86_400_000)
  await w.a.ctx.janitor.run()
  t.equal(await w.a.ctx.db.prisma.credentialTally.count(), 1, 'the row stays while charts show it')
  w.a.clock.set(midnight + 92 * 86_400_000)
  await w.a.ctx.janitor.run()
  t.equal(await w.a.ctx.db.prisma.credentialTally.count(), 0, 'the row goes 91 days later')
})

t.test('public: anyone reads', async (t) => {
  const w = await spaceWorld(t, { policy: { ...MEMBERS_ONLY, readPolicy: { kind: 'public' } } })
  t.equal((await w.getCredential(w.user('anyone'))).status, 200)
})

async function managingApp(
  t: Parameters<typeof spaceWorld>[0],
  behaviour: (user: string) => 'yes' | 'no' | 'hang' | 'error' | 'garbage',
) {
  const app = await MockService.start(t)
  app.handler = (req, res) => {
    const b = behaviour(req.query.get('user') ?? '')
    if (b === 'hang') return
    if (b === 'error') return app.json(res, 500, { error: 'InternalServerError' })
    if (b === 'garbage') return app.json(res, 200, { authorized: 'yes' })
    app.json(res, 200, { authorized: b === 'yes' })
  }
  return app
}

t.test('managing-app: the app decides, asked with service auth from the authority', async (t) => {
  let web!: SpaceWorld['web']
  const app = await managingApp(t, (u) => (u.endsWith(':allowed') ? 'yes' : 'no'))
  const w = await spaceWorld(t, {
    policy: { ...MEMBERS_ONLY, readPolicy: { kind: 'managing-app', managingApp: 'PLACEHOLDER' } },
  })
  web = w.web
  const appId = web.create('forum-app', {
    services: { forum: { type: 'ForumApp', endpoint: app.origin } },
  })
  await w.a.ctx.manager.updatePolicy(w.space, {
    readPolicy: { kind: 'managing-app', managingApp: `${appId.did}#forum` },
  })

  t.equal((await w.getCredential(w.user('allowed'))).status, 200)
  t.match(await w.getCredential(w.user('refused')), refusal('UserNotAuthorized'))
  const call = app.calls[0]!
  t.equal(call.path, '/xrpc/com.atproto.simplespace.checkUserAccess')
  t.same(Object.fromEntries(call.query), {
    space: w.space,
    user: w.user('allowed').did,
    access: 'read',
  })
  const jwt = String(call.headers.authorization).replace(/^Bearer /, '')
  const claims = await verifyServiceJwt(jwt, {
    nowSec: w.now(),
    lxm: 'com.atproto.simplespace.checkUserAccess',
    aud: [`${appId.did}#forum`],
    getSigningKey: async () => ({ curve: 'secp256k1', publicKey: w.authority.key.publicKey }),
  })
  t.equal(claims.iss, w.authority.did, 'signed as the bare authority DID')
})

t.test(
  'managing-app: fails closed on errors, garbage, and a hang (within the timeout)',
  async (t) => {
    const app = await managingApp(t, (u) =>
      u.endsWith(':slow') ? 'hang' : u.endsWith(':broken') ? 'error' : 'garbage',
    )
    const w = await spaceWorld(t, { env: { GATEHOUSE_MANAGING_APP_TIMEOUT_MS: '500' } })
    const appId = w.web.create('app', {
      services: { forum: { type: 'ForumApp', endpoint: app.origin } },
    })
    await w.a.ctx.manager.updatePolicy(w.space, {
      readPolicy: { kind: 'managing-app', managingApp: `${appId.did}#forum` },
    })
    t.match(await w.getCredential(w.user('broken')), refusal('UserNotAuthorized'))
    t.match(await w.getCredential(w.user('garbage')), refusal('UserNotAuthorized'))
    const started = Date.now()
    t.match(await w.getCredential(w.user('slow')), refusal('UserNotAuthorized'))
    t.ok(
      Date.now() - started < 2000,
      `answered within the 500 ms timeout (took ${Date.now() - started} ms)`,
    )
    await w.a.ctx.manager.updatePolicy(w.space, {
      readPolicy: { kind: 'managing-app', managingApp: `${appId.did}#missing` },
    })
    t.match(await w.getCredential(w.user('ok')), refusal('UserNotAuthorized'), 'unresolvable app')
  },
)

t.test(
  'allowList: attested client ids only; a refused app is never shown to the managing app',
  async (t) => {
    const good = await ClientApp.start(t, { name: 'good' })
    const other = await ClientApp.start(t, { name: 'other', inlineJwks: true })
    const app = await managingApp(t, () => 'yes')
    const w = await spaceWorld(t)
    const appId = w.web.create('mgr', { services: { m: { type: 'M', endpoint: app.origin } } })
    await w.a.ctx.manager.updatePolicy(w.space, {
      readPolicy: { kind: 'managing-app', managingApp: `${appId.did}#m` },
      appAccess: { kind: 'allowList', allowed: [good.clientId] },
    })
    const alice = w.user('alice')
    t.match(await w.getCredential(alice), {
      status: 400,
      body: { error: 'AppNotAuthorized', message: 'Application not authorized for this space' },
    })
    const refused = await w.getCredential(alice, {
      attestation: await other.attest({ authorityDid: w.authority.did, nowSec: w.now() }),
    })
    t.match(refused, refusal('AppNotAuthorized'))
    t.equal(app.calls.length, 0, 'the managing app never heard of the refused app')
    const ok = await w.getCredential(alice, {
      attestation: await good.attest({ authorityDid: w.authority.did, nowSec: w.now() }),
    })
    t.equal(ok.status, 200)
    t.equal(
      app.calls[0]?.query.get('clientId'),
      good.clientId,
      'the attested client id is passed on',
    )
    const issued = await w.a.ctx.db.prisma.issuedCredential.findFirst({ where: { space: w.space } })
    t.equal(issued?.clientId, good.clientId)
  },
)

t.test('denyList: everyone but the listed apps, and an attestation is required', async (t) => {
  const denied = await ClientApp.start(t, { name: 'denied' })
  const fine = await ClientApp.start(t, { name: 'fine' })
  const w = await spaceWorld(t, { policy: { ...MEMBERS_ONLY, readPolicy: { kind: 'public' } } })
  await w.a.ctx.manager.updatePolicy(w.space, {
    appAccess: { kind: 'denyList', denied: [denied.clientId] },
  })
  const bob = w.user('bob')
  t.match(await w.getCredential(bob), refusal('AppNotAuthorized'), 'no attestation')
  t.match(
    await w.getCredential(bob, {
      attestation: await denied.attest({ authorityDid: w.authority.did, nowSec: w.now() }),
    }),
    refusal('AppNotAuthorized'),
  )
  t.equal(
    (
      await w.getCredential(bob, {
        attestation: await fine.attest({ authorityDid: w.authority.did, nowSec: w.now() }),
      })
    ).status,
    200,
  )
  const space = await w.getCredential(bob, {
    attestation: await fine.attest({ authorityDid: w.authority.did, nowSec: w.now() }),
  })
  const view = await w.getSpace(space.body.credential as string, space.holder)
  t.same(view.body.appAccess, {
    $type: 'dev.gatehouse.simplespace.defs#denyList',
    denied: [denied.clientId],
  })
})

t.test('an attestation is verified whenever present, even on open spaces', async (t) => {
  const app = await ClientApp.start(t)
  const w = await spaceWorld(t)
  const alice = await member(w, 'alice')
  const now = w.now()
  const cases: [string, Promise<string>][] = [
    [
      'wrong audience',
      app.attest({
        authorityDid: w.authority.did,
        nowSec: now,
        aud: 'did:web:elsewhere.example#atproto_space_host',
      }),
    ],
    [
      'bare authority audience',
      app.attest({ authorityDid: w.authority.did, nowSec: now, aud: w.authority.did }),
    ],
    ['expired', app.attest({ authorityDid: w.authority.did, nowSec: now - 120 })],
    [
      'unpublished key',
      unpublishedKey().then((key) =>
        app.attest({ authorityDid: w.authority.did, nowSec: now, key }),
      ),
    ],
    [
      'iss is not sub',
      app.attest({
        authorityDid: w.authority.did,
        nowSec: now,
        iss: 'https://evil.example/client.json',
      }),
    ],
    ['typ JWT', app.attest({ authorityDid: w.authority.did, nowSec: now, typ: 'JWT' })],
    [
      'lifetime over 300 s',
      app.attest({ authorityDid: w.authority.did, nowSec: now, ttlSec: 3600 }),
    ],
    [
      'iat in the future (beyond the clock skew)',
      app.attest({ authorityDid: w.authority.did, nowSec: now + 30, ttlSec: 30 }),
    ],
    [
      'exp beyond what a Date holds',
      app.attest({ authorityDid: w.authority.did, nowSec: now, ttlSec: 8.64e12 }),
    ],
  ]
  for (const [name, attestation] of cases) {
    t.match(
      await w.getCredential(alice, { attestation: await attestation }),
      refusal('InvalidClientAttestation'),
      name,
    )
  }
  const once = await app.attest({ authorityDid: w.authority.did, nowSec: now })
  t.equal((await w.getCredential(alice, { attestation: once })).status, 200)
  t.match(await w.getCredential(alice, { attestation: once }), {
    status: 400,
    body: { error: 'InvalidClientAttestation', message: /already been used/ },
  })
})

t.test(
  'per-space credential lifetime, and the #atproto_space key when the authority has one',
  async (t) => {
    const w = await spaceWorld(t, { credentialTtlSec: 300 })
    const alice = await member(w, 'alice')
    const spaceKey = Keypair.generate('p256')
    const { payload } = decodeToken((await w.getCredential(alice)).body.credential as string)
    t.equal((payload.exp as number) - (payload.iat as number), 300)
    await registerAuthority(w.a.ctx, w.authority.did, {
      atproto: w.authority.key,
      atproto_space: spaceKey,
    })
    w.authority.extraKeys.atproto_space = spaceKey
    const res = await w.getCredential(alice)
    const { header } = decodeToken(res.body.credential as string)
    t.same(header, { alg: 'ES256', typ: 'atproto-space-credential+jwt', kid: '#atproto_space' })
    t.equal(
      (await w.getSpace(res.body.credential as string, res.holder)).status,
      200,
      'verifies via #atproto_space',
    )
  },
)

t.test('getSpace: the credential must be for that space', async (t) => {
  const w = await spaceWorld(t)
  const alice = await member(w, 'alice')
  const other = await w.a.ctx.spaces.create({
    authority: w.authority.did,
    spaceType: 'com.example.forum',
    skey: 'other',
    ...MEMBERS_ONLY,
  })
  const res = await w.getCredential(alice)
  t.match(await w.getSpace(res.body.credential as string, res.holder, other.uri), {
    status: 400,
    body: { error: 'InvalidCredential' },
  })
  // Contract §3.3 order: the space is checked before the signed audience.
  const q = (space: string) =>
    `/xrpc/com.atproto.simplespace.getSpace?${new URLSearchParams({ space })}`
  const wrongAudience = presentHeaders(res.body.credential as string, alice.did, res.holder)
  const both = await w.a.fetch(q(other.uri), { headers: wrongAudience })
  t.match(
    { status: both.status, body: await both.json() },
    { status: 400, body: { error: 'InvalidCredential' } },
    'wrong space and wrong audience: the space speaks first',
  )
  const audienceOnly = await w.a.fetch(q(w.space), { headers: wrongAudience })
  t.match(
    { status: audienceOnly.status, body: await audienceOnly.json() },
    { status: 401, body: { error: 'BadSpaceAudience' } },
  )
  await w.a.ctx.spaces.delete(w.space)
  t.match(await w.getSpace(res.body.credential as string, res.holder), refusal('SpaceNotFound'))
})

t.test('every policy × app-access combination', async (t) => {
  const app = await ClientApp.start(t, { name: 'combo' })
  const mgr = await managingApp(t, (u) => (u.endsWith(':member') ? 'yes' : 'no'))
  const w = await spaceWorld(t)
  const mgrId = w.web.create('combo-mgr', { services: { m: { type: 'M', endpoint: mgr.origin } } })
  const memberUser = await member(w, 'member')
  const outsider = w.user('outsider')
  const reads: SpacePolicy['readPolicy'][] = [
    { kind: 'public' },
    { kind: 'member-list' },
    { kind: 'managing-app', managingApp: `${mgrId.did}#m` },
  ]
  const apps: SpacePolicy['appAccess'][] = [
    { kind: 'open' },
    { kind: 'allowList', allowed: [app.clientId] },
    { kind: 'denyList', denied: ['https://other.example/c.json'] },
  ]
  for (const readPolicy of reads) {
    for (const appAccess of apps) {
      await w.a.ctx.manager.updatePolicy(w.space, { readPolicy, appAccess })
      for (const attested of [false, true]) {
        for (const user of [memberUser, outsider]) {
          const attestation = attested
            ? await app.attest({ authorityDid: w.authority.did, nowSec: w.now() })
            : undefined
          const appOk = appAccess.kind === 'open' || attested
          const userOk = readPolicy.kind === 'public' || user === memberUser
          const expected = !appOk ? 400 : userOk ? 200 : 400
          const res = await w.getCredential(user, { attestation })
          const label = `${readPolicy.kind} × ${appAccess.kind}, ${attested ? 'attested' : 'no attestation'}, ${user === memberUser ? 'member' : 'outsider'}`
          t.equal(res.status, expected, label)
          if (expected === 400)
            t.equal(res.body.error, appOk ? 'UserNotAuthorized' : 'AppNotAuthorized', label)
        }
      }
    }
  }
})

t.test(
  'credentials are signed by libsecp256k1: RFC 6979 bytes, valid, low-S, a fresh nonce each',
  async (t) => {
    t.ok(usesLibsecp256k1('secp256k1'), 'the binding signs ES256K on this platform')
    const w = await spaceWorld(t)
    const alice = await member(w, 'alice')
    const key = w.authority.key
    // Every credential is signed inline by libsecp256k1 with RFC 6979's deterministic nonce: the
    // exact bytes @noble/curves makes for the same key and input, never a nonce made ahead.
    const signatures: { input: Uint8Array; sig: Uint8Array }[] = []
    for (let i = 0; i < 12; i++) {
      const res = await w.getCredential(alice)
      t.equal(res.status, 200)
      const [h, p, s] = (res.body.credential as string).split('.')
      const input = new TextEncoder().encode(`${h}.${p}`)
      const sig = new Uint8Array(Buffer.from(s!, 'base64url'))
      signatures.push({ input, sig })
      t.same(
        Buffer.from(sig),
        Buffer.from(signWithNoble('secp256k1', input, key.exportSecretKey())),
        'the RFC 6979 signature noble makes',
      )
    }
    for (const { input, sig } of signatures)
      t.ok(verifySignature('secp256k1', key.publicKey, input, sig, { allowHighS: false }))
    const rs = new Set(
      signatures.map(({ sig }) => Buffer.from(sig.subarray(0, 32)).toString('hex')),
    )
    t.equal(rs.size, signatures.length, 'no two signatures share a nonce (every jti differs)')

    // A refused request is issued nothing.
    const before = await w.a.ctx.db.prisma.issuedCredential.count({ where: { space: w.space } })
    t.match(await w.getCredential(w.user('nobody')), refusal('UserNotAuthorized'))
    t.equal(
      await w.a.ctx.db.prisma.issuedCredential.count({ where: { space: w.space } }),
      before,
      'nothing issued to a refused request',
    )
  },
)

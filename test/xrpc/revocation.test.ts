/**
 * Revocation: removing a member, clearing its read flag, narrowing app access, or an explicit revoke
 * makes Gatehouse refuse the credentials at once (401 CredentialRevoked) and tells the repo hosts of
 * the space's writers (`notifyCredentialRevoked`, ≤ 100 jtis a call, service auth from the authority,
 * aud = a writer DID each host serves), retrying transient failures only.
 */
import t from 'tap'
import { verifyServiceJwt } from '../../src/crypto/service-auth.js'
import { ClientApp, MockService } from '../_helpers/services.js'
import { decodeToken, spaceWorld, type SpaceWorld } from '../_helpers/spaces.js'
import { serviceJwt } from '../_helpers/tokens.js'

async function repoHost(t: Parameters<typeof spaceWorld>[0], answers: number[] = []) {
  const host = await MockService.start(t)
  host.handler = (_req, res) => host.json(res, answers.shift() ?? 200, {})
  return host
}

async function withWriters(w: SpaceWorld, hosts: MockService[]) {
  const writers = []
  for (const [i, host] of hosts.entries()) {
    const writer = w.web.create(`writer-${i}`, {
      services: { atproto_pds: { type: 'AtprotoPersonalDataServer', endpoint: host.origin } },
    })
    await w.a.ctx.writers.record(w.space, writer.did, {
      repoRev: '3lzq2abcdefg2',
      hash: new Uint8Array(32),
      spaceRev: '3lzq2abcdefg2',
    })
    writers.push(writer)
  }
  return writers
}

const env = { GATEHOUSE_REVOCATION_RETRY_BASE_MS: '5' }

t.test(
  "removing a member revokes its live credentials, here and at the writers' repo hosts",
  async (t) => {
    const w = await spaceWorld(t, { env })
    const hostA = await repoHost(t)
    const hostB = await repoHost(t)
    const [w0, w1, w2] = await withWriters(w, [hostA, hostA, hostB])
    const alice = w.user('alice')
    await w.a.ctx.spaces.putMember(w.space, alice.did, { read: true, write: true })
    const cred = await w.getCredential(alice)
    const jti = decodeToken(cred.body.credential as string).payload.jti
    t.equal((await w.getSpace(cred.body.credential as string, cred.holder)).status, 200)

    const config = await w.a.ctx.spaces.getActiveConfig(w.space)
    await w.a.ctx.manager.removeMember(config, alice.did)
    t.match(await w.getSpace(cred.body.credential as string, cred.holder), {
      status: 401,
      body: { error: 'CredentialRevoked' },
    })

    await w.a.ctx.background.processAll()
    t.equal(hostA.calls.length, 1, 'one call per repo host')
    t.equal(hostB.calls.length, 1)
    for (const [host, expectedAud] of [
      [hostA, [w0!.did, w1!.did]],
      [hostB, [w2!.did]],
    ] as const) {
      const call = host.calls[0]!
      t.equal(call.path, '/xrpc/com.atproto.space.notifyCredentialRevoked')
      t.same(call.body, { space: w.space, credentials: [jti] })
      const claims = await verifyServiceJwt(
        String(call.headers.authorization).slice('Bearer '.length),
        {
          nowSec: w.now(),
          lxm: 'com.atproto.space.notifyCredentialRevoked',
          getSigningKey: async () => ({ curve: 'secp256k1', publicKey: w.authority.key.publicKey }),
        },
      )
      t.equal(claims.iss, w.authority.did)
      t.ok(
        (expectedAud as readonly string[]).includes(claims.aud),
        'aud is a writer DID that host serves',
      )
    }
  },
)

t.test('clearing the read flag revokes; clearing only write does not', async (t) => {
  const w = await spaceWorld(t, { env })
  const host = await repoHost(t)
  await withWriters(w, [host])
  const bob = w.user('bob')
  await w.a.ctx.spaces.putMember(w.space, bob.did, { read: true, write: true })
  const cred = await w.getCredential(bob)
  const config = await w.a.ctx.spaces.getActiveConfig(w.space)
  await w.a.ctx.manager.putMember(config, bob.did, { read: true, write: false })
  t.equal((await w.getSpace(cred.body.credential as string, cred.holder)).status, 200)
  await w.a.ctx.manager.putMember(config, bob.did, { read: false, write: false })
  t.match(await w.getSpace(cred.body.credential as string, cred.holder), {
    status: 401,
    body: { error: 'CredentialRevoked' },
  })
  await w.a.ctx.background.processAll()
  t.equal(host.calls.length, 1)
})

t.test('narrowing app access revokes what the refused apps hold, and only that', async (t) => {
  const w = await spaceWorld(t, { env })
  const keep = await ClientApp.start(t, { name: 'keep' })
  const drop = await ClientApp.start(t, { name: 'drop' })
  const carol = w.user('carol')
  await w.a.ctx.spaces.putMember(w.space, carol.did, { read: true, write: true })
  const viaKeep = await w.getCredential(carol, {
    attestation: await keep.attest({ authorityDid: w.authority.did, nowSec: w.now() }),
  })
  const viaDrop = await w.getCredential(carol, {
    attestation: await drop.attest({ authorityDid: w.authority.did, nowSec: w.now() }),
  })
  const unattested = await w.getCredential(carol)
  await w.a.ctx.manager.updatePolicy(w.space, {
    appAccess: { kind: 'allowList', allowed: [keep.clientId] },
  })
  t.equal((await w.getSpace(viaKeep.body.credential as string, viaKeep.holder)).status, 200)
  t.match(await w.getSpace(viaDrop.body.credential as string, viaDrop.holder), {
    status: 401,
    body: { error: 'CredentialRevoked' },
  })
  t.match(await w.getSpace(unattested.body.credential as string, unattested.holder), {
    status: 401,
    body: { error: 'CredentialRevoked' },
  })
})

t.test('explicit revoke; transient failures are retried, permanent ones are not', async (t) => {
  const w = await spaceWorld(t, { env })
  const flaky = await repoHost(t, [503, 500, 200])
  const refusing = await repoHost(t, [403])
  await withWriters(w, [flaky, refusing])
  const dan = w.user('dan')
  await w.a.ctx.spaces.putMember(w.space, dan.did, { read: true, write: true })
  const cred = await w.getCredential(dan)
  const jti = decodeToken(cred.body.credential as string).payload.jti as string
  const config = await w.a.ctx.spaces.getActiveConfig(w.space)
  t.equal(await w.a.ctx.credentials.revoke(config, { jtis: [jti] }), 1)
  t.equal(await w.a.ctx.credentials.revoke(config, { jtis: [jti] }), 0, 'already revoked')
  await w.a.ctx.background.processAll()
  t.equal(flaky.calls.length, 3, 'retried after 503 and 500, delivered on the third attempt')
  t.equal(refusing.calls.length, 1, 'a 403 is final')
})

t.test(
  'a generation A repo host cannot take the notice: recorded as not supported, not retried',
  async (t) => {
    const w = await spaceWorld(t, { env })
    // What the reference PDS of generation A answers: it proxies the unknown method onward, and
    // the authority's token is refused there (or the method is unknown there too).
    const genA = await MockService.start(t)
    genA.handler = (_req, res) =>
      genA.json(res, 400, { error: 'InvalidToken', message: 'Token could not be verified' })
    const unknown = await repoHost(t, [501])
    await withWriters(w, [genA, unknown])
    const erin = w.user('erin')
    await w.a.ctx.spaces.putMember(w.space, erin.did, { read: true, write: true })
    const cred = await w.getCredential(erin)
    const config = await w.a.ctx.spaces.getActiveConfig(w.space)
    t.equal(await w.a.ctx.credentials.revoke(config, { userDid: erin.did }), 1)
    await w.a.ctx.background.processAll()
    t.equal(genA.calls.length, 1, 'not retried')
    t.equal(unknown.calls.length, 1)
    const notes = w.a.logs.entries.filter((e) => e.outcome === 'unsupported')
    t.equal(notes.length, 2, 'one record per host')
    t.ok(
      notes.every((e) => e.level === 30 && /not supported by host/.test(String(e.msg))),
      'at info level, as not supported',
    )
    t.notOk(
      w.a.logs.entries.some((e) => /revocation notice not delivered/.test(String(e.msg))),
      'not recorded as a failure',
    )
    t.match(await w.getSpace(cred.body.credential as string, cred.holder), {
      status: 401,
      body: { error: 'CredentialRevoked' },
    })
  },
)

t.test('more than 100 revoked credentials go out in batches of 100', async (t) => {
  const w = await spaceWorld(t, { env })
  const host = await repoHost(t)
  await withWriters(w, [host])
  const eve = w.user('eve')
  await w.a.ctx.spaces.putMember(w.space, eve.did, { read: true, write: true })
  for (let i = 0; i < 101; i++) t.equal((await w.getCredential(eve)).status, 200)
  const config = await w.a.ctx.spaces.getActiveConfig(w.space)
  t.equal(await w.a.ctx.credentials.revoke(config, { userDid: eve.did }), 101)
  await w.a.ctx.background.processAll()
  t.same(
    host.calls.map((c) => (c.body as { credentials: string[] }).credentials.length).sort(),
    [1, 100],
  )
})

t.test('expired credentials are not revoked (nothing to refuse)', async (t) => {
  const w = await spaceWorld(t, { env })
  const fay = w.user('fay')
  await w.a.ctx.spaces.putMember(w.space, fay.did, { read: true, write: true })
  await w.getCredential(fay)
  w.a.clock.advance(601_000)
  const config = await w.a.ctx.spaces.getActiveConfig(w.space)
  t.equal(await w.a.ctx.credentials.revoke(config, { userDid: fay.did }), 0)
})

t.test(
  'dev.gatehouse.space.revokeCredentials: a manager revokes over HTTP; others are refused',
  async (t) => {
    const w = await spaceWorld(t, { env })
    const host = await repoHost(t)
    await withWriters(w, [host])
    const gina = w.user('gina')
    await w.a.ctx.spaces.putMember(w.space, gina.did, { read: true, write: true })
    const first = await w.getCredential(gina)
    const second = await w.getCredential(gina)
    const moderator = w.user('moderator')
    await w.a.ctx.managers.set(w.authority.did, moderator.did, 'moderator')
    const lxm = 'dev.gatehouse.space.revokeCredentials'
    const call = async (caller: typeof moderator, body: unknown, aud = w.a.ctx.identity.did) => {
      const jwt = serviceJwt({ iss: caller, aud, lxm, nowSec: w.now() })
      const res = await w.a.fetch(`/xrpc/${lxm}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
      return { status: res.status, body: (await res.json()) as Record<string, unknown> }
    }
    const jti = decodeToken(first.body.credential as string).payload.jti as string
    t.same(await call(moderator, { space: w.space, credentials: [jti] }), {
      status: 200,
      body: { revoked: 1 },
    })
    t.match(await w.getSpace(first.body.credential as string, first.holder), {
      status: 401,
      body: { error: 'CredentialRevoked' },
    })
    t.equal(
      (await w.getSpace(second.body.credential as string, second.holder)).status,
      200,
      'only the listed one',
    )
    t.same(await call(moderator, { space: w.space, user: gina.did }), {
      status: 200,
      body: { revoked: 1 },
    })
    await w.a.ctx.background.processAll()
    t.equal(host.calls.length, 2, 'repo host told each time')

    t.match(await call(w.user('stranger'), { space: w.space, user: gina.did }), {
      status: 400,
      body: { error: 'NotSpaceOwner' },
    })
    t.match(
      await call(moderator, { space: w.space, user: gina.did }, 'did:web:elsewhere.example'),
      { status: 403, body: { error: 'Forbidden' } },
    )
    t.equal(
      (await call(moderator, { space: w.space, user: gina.did }, w.authority.did)).status,
      200,
      'the authority DID is an accepted audience',
    )
    t.match(await call(moderator, { space: w.space, user: gina.did, credentials: ['x'] }), {
      status: 400,
      body: { error: 'InvalidRequest' },
    })
    t.match(await call(moderator, { space: w.space.replace(/[^/]+$/, 'nope'), user: gina.did }), {
      status: 400,
      body: { error: 'SpaceNotFound' },
    })
  },
)

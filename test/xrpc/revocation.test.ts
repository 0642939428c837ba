/**
 * Revocation: removing a member, clearing its read flag, narrowing app access or the read policy,
 * deleting the space, or an explicit revoke makes Gatehouse refuse the credentials at once (401
 * CredentialRevoked; a credential older than its space is refused too) and tells the repo hosts of
 * the space's writers (`notifyCredentialRevoked`, ≤ 100 jtis a call, service auth from the authority,
 * aud = a writer DID each host serves) through the durable relay, retrying transient failures only.
 */
import t from 'tap'
import { verifyServiceJwt } from '../../src/crypto/service-auth.js'
import { ClientApp, MockService } from '../_helpers/services.js'
import { decodeToken, spaceWorld, type SpaceWorld } from '../_helpers/spaces.js'
import type { Keypair } from '../../src/crypto/keypair.js'
import { getHostedSpace } from '../../src/spaces/hosted.js'
import { presentHeaders, serviceJwt } from '../_helpers/tokens.js'
import { listDeadLetters } from '../_helpers/sync.js'

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
    await w.a.ctx.notify.acceptWrite(w.space, {
      repo: writer.did,
      repoRev: '3lzq2abcdefg2',
      hash: new Uint8Array(32),
    })
    writers.push(writer)
  }
  return writers
}

const env = { GATEHOUSE_RELAY_RETRY_BASE_MS: '1000' }

/** Runs relay passes, moving the clock past each backoff, until no revocation notice is queued. */
async function deliver(w: SpaceWorld) {
  for (let i = 0; i < 30 && (await w.a.ctx.db.prisma.revocationNotice.count()) > 0; i++) {
    await w.a.ctx.relay.runOnce()
    w.a.clock.advance(5000)
  }
}

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

    const config = await getHostedSpace(w.a.ctx, w.space)
    await w.a.ctx.manager.removeMember(config, alice.did)
    t.match(await w.getSpace(cred.body.credential as string, cred.holder), {
      status: 401,
      body: { error: 'CredentialRevoked' },
    })

    await deliver(w)
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
  const config = await getHostedSpace(w.a.ctx, w.space)
  await w.a.ctx.manager.putMember(config, bob.did, { read: true, write: false })
  t.equal((await w.getSpace(cred.body.credential as string, cred.holder)).status, 200)
  await w.a.ctx.manager.putMember(config, bob.did, { read: false, write: false })
  t.match(await w.getSpace(cred.body.credential as string, cred.holder), {
    status: 401,
    body: { error: 'CredentialRevoked' },
  })
  await deliver(w)
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
  const config = await getHostedSpace(w.a.ctx, w.space)
  t.equal(await w.a.ctx.credentials.revoke(config, { jtis: [jti] }), 1)
  t.equal(await w.a.ctx.credentials.revoke(config, { jtis: [jti] }), 0, 'already revoked')
  await deliver(w)
  t.equal(flaky.calls.length, 3, 'retried after 503 and 500, delivered on the third attempt')
  t.equal(refusing.calls.length, 1, 'a 403 is final')
  t.match(
    await listDeadLetters(w),
    { deadLetters: [{ kind: 'revocation', lastError: 'status 403', credentials: [jti] }] },
    'the refused notice is a dead letter, with its kind and credentials',
  )
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
    const config = await getHostedSpace(w.a.ctx, w.space)
    t.equal(await w.a.ctx.credentials.revoke(config, { userDid: erin.did }), 1)
    await deliver(w)
    t.equal(genA.calls.length, 1, 'not retried')
    t.equal(unknown.calls.length, 1)
    const notes = w.a.logs.entries.filter((e) => e.outcome === 'unsupported')
    t.equal(notes.length, 2, 'one record per host')
    t.ok(
      notes.every((e) => e.level === 30 && /not supported by host/.test(String(e.msg))),
      'at info level, as not supported',
    )
    t.same(
      await w.a.ctx.db.prisma.deadLetter.findMany({ where: { space: w.space } }),
      [],
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
  const config = await getHostedSpace(w.a.ctx, w.space)
  t.equal(await w.a.ctx.credentials.revoke(config, { userDid: eve.did }), 101)
  await deliver(w)
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
  const config = await getHostedSpace(w.a.ctx, w.space)
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
    await w.a.ctx.managers.change(w.authority.did, moderator.did, 'moderator', 'operator')
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
    await deliver(w)
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

const PUBLIC_POLICY = {
  readPolicy: { kind: 'public' },
  writePolicy: { kind: 'member-list' },
  appAccess: { kind: 'open' },
} as const
const D = 'com.atproto.simplespace.defs'

/** An admin of the space's authority, calling management methods over HTTP with service auth. */
async function admin(w: SpaceWorld) {
  const who = w.user('admin')
  await w.a.ctx.managers.change(w.authority.did, who.did, 'admin', 'operator')
  return async (nsid: string, body: Record<string, unknown>) => {
    const jwt = serviceJwt({ iss: who, aud: w.authority.did, lxm: nsid, nowSec: w.now() })
    const res = await w.a.fetch(`/xrpc/${nsid}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
    return res.status
  }
}

/** listRepos with a credential, as its holder presents it (audience: the authority). */
async function listRepos(w: SpaceWorld, cred: { body: Record<string, unknown>; holder: Keypair }) {
  const res = await w.a.fetch(
    `/xrpc/com.atproto.space.listRepos?${new URLSearchParams({ space: w.space })}`,
    { headers: presentHeaders(cred.body.credential as string, w.authority.did, cred.holder) },
  )
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

/** A public space with one writer (its repo host recorded), and an admin to manage it. */
async function publicSpace(t: Parameters<typeof spaceWorld>[0]) {
  const w = await spaceWorld(t, { env, policy: PUBLIC_POLICY })
  const host = await repoHost(t)
  await withWriters(w, [host])
  return { w, host, call: await admin(w) }
}

const jtiOf = (cred: { body: Record<string, unknown> }) =>
  decodeToken(cred.body.credential as string).payload.jti as string

t.test(
  'a credential does not outlive its space: deleting revokes every live one, here and at repo hosts',
  async (t) => {
    const { w, host, call } = await publicSpace(t)
    const stranger = await w.getCredential(w.user('stranger'))
    t.equal((await listRepos(w, stranger)).status, 200, 'a public space: anyone reads')

    t.equal(await call('com.atproto.simplespace.deleteSpace', { space: w.space }), 200)
    t.match(
      await listRepos(w, stranger),
      { status: 400, body: { error: 'SpaceNotFound' } },
      'while deleted, the contract answer (§4.5), revoked or not',
    )
    t.equal(
      await call('com.atproto.simplespace.createSpace', {
        spaceType: 'com.example.forum',
        skey: w.space.split('/').pop(),
        readPolicy: { $type: `${D}#memberListPolicy` },
        writePolicy: { $type: `${D}#memberListPolicy` },
        appAccess: { $type: `${D}#open` },
      }),
      200,
    )
    t.match(
      await listRepos(w, stranger),
      { status: 401, body: { error: 'CredentialRevoked' } },
      'the same key, members-only now: the old credential is refused',
    )
    await deliver(w)
    t.same(
      host.calls.map((c) => c.body),
      [{ space: w.space, credentials: [jtiOf(stranger)] }],
      "the deleted space's writers' repo hosts are told",
    )
  },
)

t.test(
  'a credential issued before the space was re-created is refused even if its revocation was missed',
  async (t) => {
    const w = await spaceWorld(t, { policy: PUBLIC_POLICY })
    const stranger = await w.getCredential(w.user('stranger'))
    // The space service alone: no revocation (as if the process died between the two steps).
    await w.a.ctx.spaces.delete(w.space)
    w.a.clock.advance(1000)
    await w.a.ctx.spaces.create({
      authority: w.authority.did,
      spaceType: 'com.example.forum',
      skey: w.space.split('/').pop()!,
      ...PUBLIC_POLICY,
    })
    t.match(await listRepos(w, stranger), { status: 401, body: { error: 'CredentialRevoked' } })
    t.equal(
      (await listRepos(w, await w.getCredential(w.user('stranger')))).status,
      200,
      'a credential for the new space works',
    )
  },
)

t.test(
  'narrowing the read policy revokes what it no longer admits; widening revokes nothing',
  async (t) => {
    const { w, host, call } = await publicSpace(t)
    const update = (readPolicy: Record<string, unknown>, more: Record<string, unknown> = {}) =>
      call('com.atproto.simplespace.updateSpace', { space: w.space, readPolicy, ...more })
    const member = w.user('member')
    await w.a.ctx.spaces.putMember(w.space, member.did, { read: true, write: true })
    const writeOnly = w.user('write-only')
    await w.a.ctx.spaces.putMember(w.space, writeOnly.did, { read: false, write: true })
    const creds = {
      member: await w.getCredential(member),
      writeOnly: await w.getCredential(writeOnly),
      stranger: await w.getCredential(w.user('stranger')),
      authority: await w.getCredential(w.authority),
    }
    for (const c of Object.values(creds)) t.equal(c.status, 200)
    const statuses = async () =>
      Object.fromEntries(
        await Promise.all(
          Object.entries(creds).map(async ([k, c]) => [k, (await listRepos(w, c)).status]),
        ),
      )

    t.equal(await update({ $type: `${D}#memberListPolicy` }), 200)
    t.same(
      await statuses(),
      { member: 200, writeOnly: 401, stranger: 401, authority: 200 },
      'public → member list: only read members (and the authority) keep theirs',
    )
    await deliver(w)
    t.same(
      host.calls.map((c) => (c.body as { credentials: string[] }).credentials.sort()),
      [[jtiOf(creds.writeOnly), jtiOf(creds.stranger)].sort()],
      'and repo hosts are told',
    )

    t.equal(await update({ $type: `${D}#publicPolicy` }), 200)
    t.same(
      await statuses(),
      { member: 200, writeOnly: 401, stranger: 401, authority: 200 },
      'widening revokes nothing (and brings nothing back)',
    )
    const latecomer = await w.getCredential(w.user('latecomer'))
    t.equal(
      await update({ $type: `${D}#publicPolicy` }, { writePolicy: { $type: `${D}#publicPolicy` } }),
      200,
    )
    t.equal((await listRepos(w, latecomer)).status, 200, 'the same read policy revokes nothing')
    await deliver(w)
    t.equal(host.calls.length, 1, 'and sends no notice')

    const app = w.user('managing-app')
    t.equal(await update({ $type: `${D}#managingAppPolicy`, managingApp: app.did }), 200)
    t.same(
      await statuses(),
      { member: 401, writeOnly: 401, stranger: 401, authority: 200 },
      'to a managing app: everyone but the authority, until the app admits them again',
    )
    t.match(await listRepos(w, latecomer), { status: 401, body: { error: 'CredentialRevoked' } })
  },
)

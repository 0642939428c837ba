/**
 * Generation A peers end to end, from the reference implementation's own captures
 * (../shared/vectors/notify-write.json): the five notifyWrite requests a generation A repo host sent
 * (`rev`, not `repoRev`; aud = the bare authority DID) are replayed byte for byte against a real
 * Gatehouse whose clock is the vectors' and whose PLC directory serves the vectors' documents. Each
 * is answered 200 and moves the writer set, in order and out of order. A syncer registered with a
 * DPoP-bound (generation A) credential then receives every relayed notification, and each body it
 * gets — and the listRepos and getSpace answers — validates against both generation A and generation C
 * reference lexicons with the reference validator. createSpace takes the generation A shape.
 */
import t from 'tap'
import { accessTokenHash } from '../../src/crypto/dpop.js'
import { Keypair } from '../../src/crypto/keypair.js'
import { getHostedSpace } from '../../src/spaces/hosted.js'
import { TestArbiter, type TestLike } from '../_helpers/arbiter.js'
import { dpopHolder, dpopProof } from '../_helpers/dpop.js'
import { DidWebHost, type Actor } from '../_helpers/identities.js'
import {
  assertValidInput,
  assertValidOutput,
  assertValidParams,
  validity,
  type Generation,
} from '../_helpers/reference-lexicons.js'
import { MockService } from '../_helpers/services.js'
import { decodeToken, MEMBERS_ONLY, spaceWorld } from '../_helpers/spaces.js'
import {
  delegationToken,
  exchangeHeaders,
  newHolderKey,
  presentHeaders,
  serviceJwt,
} from '../_helpers/tokens.js'
import { loadVectors } from '../_helpers/vectors.js'
import { registerAuthority } from '../_helpers/spaces.js'

const v = loadVectors('notify-write')
const NOTIFY = 'com.atproto.space.notifyWrite'
const SPACE: string = v.memberToAuthority.bodyDecoded.space
const BOTH: Generation[] = ['A', 'C']

interface Captured {
  url: string
  headers: Record<string, string>
  rawBody: string
}
/** Each write's member → authority hop (the other five are the authority's forwards). */
const captured = (v.allCaptured as Captured[]).filter(
  (c) => decodeToken(c.headers.authorization!.slice('Bearer '.length)).payload.iss === v.writer.did,
)
const body = (c: Captured) => JSON.parse(c.rawBody) as { rev: string; hash: { $bytes: string } }
const keyOf = (hex: string) => Keypair.fromSecretKey('secp256k1', Buffer.from(hex, 'hex'))

async function vectorWorld(t: TestLike & { name?: string }) {
  // A PLC directory answering for the vectors' two DIDs with the documents the reference served.
  const plc = await MockService.start(t)
  const docs: Record<string, unknown> = {
    [v.writer.did]: v.writer.didDocument,
    [v.authority.did]: v.authority.didDocument,
  }
  plc.handler = (req, res) => {
    const doc = docs[decodeURIComponent(req.path.slice(1))]
    if (doc) plc.json(res, 200, doc)
    else plc.json(res, 404, { message: 'DID not registered' })
  }
  const a = await TestArbiter.create(t, {
    env: { GATEHOUSE_PLC_URL: plc.origin },
  })
  a.clock.advance(v.clockAt * 1000 - a.clock.nowMs())
  await registerAuthority(a.ctx, v.authority.did, { atproto: keyOf(v.authority.privateKeyHex) })
  const [, , spaceType, skey] = SPACE.slice('at://'.length).split('/')
  await a.ctx.spaces.create({
    authority: v.authority.did,
    spaceType: spaceType!,
    skey: skey!,
    ...MEMBERS_ONLY,
  })
  await a.ctx.spaces.putMember(SPACE, v.writer.did, { read: true, write: true })
  const writer: Actor = { did: v.writer.did, key: keyOf(v.writer.privateKeyHex) }
  /** The captured request, byte for byte: its authorization, its content type, its raw body. */
  const replay = async (c: Captured) => {
    const res = await a.fetch(`/xrpc/${NOTIFY}`, {
      method: 'POST',
      headers: {
        authorization: c.headers.authorization!,
        'content-type': c.headers['content-type']!,
      },
      body: c.rawBody,
    })
    return { status: res.status, text: await res.text() }
  }
  const writerRow = async () =>
    (await a.ctx.notify.listWriters(SPACE, 10)).find((r) => r.did === v.writer.did)
  return { a, writer, replay, writerRow }
}

t.test('the captures are what this test says they are', async (t) => {
  t.equal(captured.length, 5, 'five writes')
  for (const c of captured) {
    const jwt = decodeToken(c.headers.authorization!.slice('Bearer '.length)).payload
    t.equal(jwt.aud, v.authority.did, 'addressed to the bare authority DID')
    t.notOk('repoRev' in JSON.parse(c.rawBody), 'the generation A body has no repoRev')
  }
  const revs = captured.map((c) => body(c).rev)
  t.same(revs, [...revs].sort(), 'in the order they were written')
})

t.test(
  'replayed byte for byte in order, each is answered 200 and moves the writer set',
  async (t) => {
    const w = await vectorWorld(t)
    for (const c of captured) {
      t.same(await w.replay(c), { status: 200, text: '' })
      const row = await w.writerRow()
      t.equal(row?.repoRev, body(c).rev, 'the writer set is at this write')
      t.equal(Buffer.from(row!.hash).toString('base64').replace(/=+$/, ''), body(c).hash.$bytes)
    }
    const expected = v.writerSetAfter.response.repos[0]
    const row = await w.writerRow()
    t.equal(row?.repoRev, expected.rev, "the reference authority's writer set after the writes")
  },
)

t.test('replayed out of order: each is answered 200; the newest write wins', async (t) => {
  const w = await vectorWorld(t)
  let newest = ''
  for (const i of [2, 0, 4, 1, 3]) {
    const c = captured[i]!
    t.same(await w.replay(c), { status: 200, text: '' }, `write ${i + 1}`)
    if (body(c).rev > newest) newest = body(c).rev
    t.equal((await w.writerRow())?.repoRev, newest, 'an older write never moves it back')
  }
  t.equal(newest, body(captured[4]!).rev)
})

t.test(
  'a syncer registered with a DPoP-bound credential gets notifications both generations read',
  async (t) => {
    const w = await vectorWorld(t)
    const publicUrl = w.a.ctx.cfg.service.publicUrl
    // The writer exchanges a delegation token the generation A way: with a DPoP proof.
    const h = await dpopHolder()
    const exchange = await w.a.fetch('/xrpc/com.atproto.space.getSpaceCredential', {
      method: 'POST',
      headers: {
        authorization: `Bearer ${delegationToken({ user: w.writer, space: SPACE, nowSec: v.clockAt })}`,
        dpop: await dpopProof(h, {
          htm: 'POST',
          htu: `${publicUrl}/xrpc/com.atproto.space.getSpaceCredential`,
          iat: v.clockAt,
        }),
        'content-type': 'application/json',
      },
      body: JSON.stringify({ space: SPACE }),
    })
    t.equal(exchange.status, 200)
    const credential = ((await exchange.json()) as { credential: string }).credential
    const claims = decodeToken(credential).payload as Record<string, any>
    t.same(claims.cnf, { jkt: h.jkt }, 'bound to the DPoP key')
    t.equal(claims.exp - claims.iat, 300, 'a DPoP-bound credential gets the shorter lifetime')
    // A generation C credential for the same member keeps the longer one.
    const holder = newHolderKey()
    const exchangeC = await w.a.fetch('/xrpc/com.atproto.space.getSpaceCredential', {
      method: 'POST',
      headers: {
        ...exchangeHeaders(
          delegationToken({ user: w.writer, space: SPACE, nowSec: v.clockAt }),
          holder,
        ),
        'content-type': 'application/json',
      },
      body: JSON.stringify({ space: SPACE }),
    })
    const credentialC = ((await exchangeC.json()) as { credential: string }).credential
    const claimsC = decodeToken(credentialC).payload as Record<string, any>
    t.equal(claimsC.exp - claimsC.iat, 600)

    const dpopGet = async (nsid: string, query: Record<string, string>) => {
      const res = await w.a.fetch(`/xrpc/${nsid}?${new URLSearchParams(query)}`, {
        headers: {
          authorization: `DPoP ${credential}`,
          dpop: await dpopProof(h, {
            htm: 'GET',
            htu: `${publicUrl}/xrpc/${nsid}`,
            iat: v.clockAt,
            ath: accessTokenHash(credential),
          }),
        },
      })
      return { status: res.status, body: (await res.json()) as Record<string, any> }
    }

    // A syncer, registered with the generation A credential.
    const web = await DidWebHost.start(t)
    const inbox = await MockService.start(t)
    inbox.handler = (_req, res) => void res.writeHead(200).end()
    const syncer = web.create('syncer', {
      services: {
        atproto_space_syncer: { type: 'AtprotoSpaceService', endpoint: inbox.origin },
      },
    })
    const register = await w.a.fetch('/xrpc/com.atproto.space.registerNotify', {
      method: 'POST',
      headers: {
        authorization: `DPoP ${credential}`,
        dpop: await dpopProof(h, {
          htm: 'POST',
          htu: `${publicUrl}/xrpc/com.atproto.space.registerNotify`,
          iat: v.clockAt,
          ath: accessTokenHash(credential),
        }),
        'content-type': 'application/json',
      },
      body: JSON.stringify({ space: SPACE, service: `${syncer.did}#atproto_space_syncer` }),
    })
    t.equal(register.status, 200, await register.clone().text())

    for (const c of captured) t.equal((await w.replay(c)).status, 200)
    const received = () =>
      inbox.calls.filter((c) => c.path === `/xrpc/${NOTIFY}`).map((c) => c.body as any)
    for (let pass = 0; pass < 10 && received().length < captured.length; pass++)
      await w.a.ctx.relay.runOnce()
    const bodies = received()
    t.equal(bodies.length, 5, 'every write relayed')
    let prev: string | undefined
    for (const [i, b] of bodies.entries()) {
      for (const gen of BOTH)
        t.equal(
          validity(() => assertValidInput(gen, NOTIFY, b)),
          true,
          `write ${i + 1}: ${gen}`,
        )
      t.equal(b.rev, body(captured[i]!).rev)
      t.equal(b.repoRev, b.rev, 'rev and repoRev name the same revision')
      t.same(b.hash, body(captured[i]!).hash)
      t.equal(b.prevSpaceRev, prev, 'prevSpaceRev links to the notification before')
      prev = b.spaceRev
    }

    const repos = await dpopGet('com.atproto.space.listRepos', { space: SPACE })
    t.equal(repos.status, 200)
    for (const gen of BOTH) {
      t.equal(
        validity(() => assertValidParams(gen, 'com.atproto.space.listRepos', { space: SPACE })),
        true,
      )
      t.equal(
        validity(() => assertValidOutput(gen, 'com.atproto.space.listRepos', repos.body)),
        true,
        `listRepos: ${gen}`,
      )
    }
    t.match(repos.body.repos, [v.writerSetAfter.response.repos[0]], 'what the reference answered')

    const space = await dpopGet('com.atproto.simplespace.getSpace', { space: SPACE })
    t.equal(space.status, 200)
    for (const gen of BOTH) {
      t.equal(
        validity(() => assertValidOutput(gen, 'com.atproto.simplespace.getSpace', space.body)),
        true,
        `getSpace: ${gen}`,
      )
    }
    t.same(space.body.policy, space.body.readPolicy)
    const spaceC = await w.a.fetch(
      `/xrpc/com.atproto.simplespace.getSpace?${new URLSearchParams({ space: SPACE })}`,
      { headers: presentHeaders(credentialC, v.authority.did, holder) },
    )
    t.same(await spaceC.json(), space.body, 'the same answer to a generation C credential')

    // Deleting the space: the syncer is told in a shape both generations read.
    await w.a.ctx.managers.change(v.authority.did, w.writer.did, 'admin', 'operator')
    const jwt = serviceJwt({
      iss: w.writer,
      aud: v.authority.did,
      lxm: 'com.atproto.simplespace.deleteSpace',
      nowSec: v.clockAt,
    })
    const deleted = await w.a.fetch('/xrpc/com.atproto.simplespace.deleteSpace', {
      method: 'POST',
      headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' },
      body: JSON.stringify({ space: SPACE }),
    })
    t.equal(deleted.status, 200)
    await w.a.ctx.relay.runOnce()
    const gone = inbox.calls.find((c) => c.path === '/xrpc/com.atproto.space.notifySpaceDeleted')
    t.ok(gone, 'notifySpaceDeleted sent')
    for (const gen of BOTH) {
      t.equal(
        validity(() => assertValidInput(gen, 'com.atproto.space.notifySpaceDeleted', gone?.body)),
        true,
        `notifySpaceDeleted: ${gen}`,
      )
    }
  },
)

t.test('a generation A body is held to the same rules', async (t) => {
  const w = await vectorWorld(t)
  const c = captured[0]!
  const send = async (payload: Record<string, unknown>) => {
    const jwt = serviceJwt({ iss: w.writer, aud: v.authority.did, lxm: NOTIFY, nowSec: v.clockAt })
    const res = await w.a.fetch(`/xrpc/${NOTIFY}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...JSON.parse(c.rawBody), ...payload }),
    })
    const text = await res.text()
    return { status: res.status, body: text ? JSON.parse(text) : undefined }
  }
  t.match(
    await send({ repoRev: '3n2xphe2msk2z' }),
    { status: 400, body: { error: 'InvalidRequest', message: /must agree/ } },
    'rev and repoRev that disagree',
  )
  t.match(await send({ rev: 'not-a-tid' }), { status: 400, body: { error: 'InvalidRequest' } })
  t.match(await send({ rev: undefined }), {
    status: 400,
    body: { error: 'InvalidRequest', message: /repoRev/ },
  })
  t.same(await send({ repoRev: body(c).rev }), { status: 200, body: undefined }, 'both, equal')
  const future = new Date((v.clockAt + 600) * 1000)
  const { encodeTid } = await import('../../src/spaces/tid.js')
  t.match(await send({ rev: encodeTid(BigInt(future.getTime()) * 1000n, 0) }), {
    status: 400,
    body: { error: 'FutureRev' },
  })
})

t.test('createSpace in the generation A shape: {type, policy, appAccess}', async (t) => {
  const w = await vectorWorld(t)
  await w.a.ctx.managers.change(v.authority.did, w.writer.did, 'admin', 'operator')
  const D = 'com.atproto.simplespace.defs'
  const create = async (input: Record<string, unknown>) => {
    const jwt = serviceJwt({
      iss: w.writer,
      aud: v.authority.did,
      lxm: 'com.atproto.simplespace.createSpace',
      nowSec: v.clockAt,
    })
    const res = await w.a.fetch('/xrpc/com.atproto.simplespace.createSpace', {
      method: 'POST',
      headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' },
      body: JSON.stringify(input),
    })
    return { status: res.status, body: (await res.json()) as Record<string, any> }
  }
  const genA = {
    type: 'com.example.group',
    skey: 'legacy',
    policy: { $type: `${D}#publicPolicy` },
    appAccess: { $type: `${D}#open` },
  }
  t.equal(
    validity(() => assertValidInput('A', 'com.atproto.simplespace.createSpace', genA)),
    true,
  )
  const made = await create(genA)
  t.equal(made.status, 200, JSON.stringify(made.body))
  t.equal(made.body.uri, `at://${v.authority.did}/space/com.example.group/legacy`)
  const found = await w.a.ctx.spaces.lookup(made.body.uri)
  t.match(found, {
    state: 'active',
    config: { readPolicy: { kind: 'public' }, writePolicy: { kind: 'member-list' } },
  })
  t.match(
    await create({ ...genA, skey: 'x1', policy: { $type: `${D}#secretPolicy` } }),
    { status: 400, body: { error: 'UnsupportedPolicy' } },
    'an unknown policy $type, generation A shape',
  )
  t.match(
    await create({
      spaceType: 'com.example.group',
      skey: 'x2',
      readPolicy: { $type: `${D}#secretPolicy` },
      writePolicy: { $type: `${D}#memberListPolicy` },
      appAccess: { $type: `${D}#open` },
    }),
    { status: 400, body: { error: 'UnsupportedPolicy' } },
    'an unknown policy $type, generation C shape',
  )
  t.match(
    await create({ ...genA, skey: 'x3', policy: { managingApp: 'did:web:x.example' } }),
    { status: 400, body: { error: 'UnsupportedPolicy' } },
    'a policy without $type',
  )
  t.match(
    await create({ ...genA, skey: 'x4', readPolicy: { $type: `${D}#publicPolicy` } }),
    { status: 400, body: { error: 'InvalidRequest' } },
    'the two shapes mixed',
  )
  t.match(
    await create({ ...genA, skey: 'x5', spaceType: 'com.example.group' }),
    { status: 400, body: { error: 'InvalidRequest' } },
    'type and spaceType both',
  )
})

t.test(
  'outbound calls: checkUserAccess params both generations read; notifyCredentialRevoked as C has it',
  async (t) => {
    const w = await spaceWorld(t)
    const app = await MockService.start(t)
    app.handler = (_req, res) => app.json(res, 200, { authorized: true })
    const appId = w.web.create('forum-app', {
      services: { forum: { type: 'ForumApp', endpoint: app.origin } },
    })
    await w.a.ctx.manager.updatePolicy(w.space, {
      readPolicy: { kind: 'managing-app', managingApp: `${appId.did}#forum` },
    })
    const reader = w.user('reader')
    const cred = await w.getCredential(reader)
    t.equal(cred.status, 200)
    const ask = app.calls.find((c) => c.path === '/xrpc/com.atproto.simplespace.checkUserAccess')
    const params = Object.fromEntries(ask!.query)
    for (const gen of BOTH) {
      t.equal(
        validity(() => assertValidParams(gen, 'com.atproto.simplespace.checkUserAccess', params)),
        true,
        `checkUserAccess: ${gen}`,
      )
    }

    const host = await MockService.start(t)
    host.handler = (_req, res) => void res.writeHead(200).end()
    const writer = w.web.create('writer', {
      services: { atproto_pds: { type: 'AtprotoPersonalDataServer', endpoint: host.origin } },
    })
    await w.a.ctx.notify.acceptWrite(w.space, {
      repo: writer.did,
      repoRev: '3lzq2abcdefg2',
      hash: new Uint8Array(32),
    })
    const config = await getHostedSpace(w.a.ctx, w.space)
    t.equal(await w.a.ctx.credentials.revoke(config, { userDid: reader.did }), 1)
    for (let i = 0; i < 3; i++) await w.a.ctx.relay.runOnce()
    const notice = host.calls.find(
      (c) => c.path === '/xrpc/com.atproto.space.notifyCredentialRevoked',
    )
    t.equal(
      validity(() =>
        assertValidInput('C', 'com.atproto.space.notifyCredentialRevoked', notice?.body),
      ),
      true,
    )
  },
)

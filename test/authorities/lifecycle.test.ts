/**
 * Authority DIDs end to end, against the reference PLC directory running in-process on loopback:
 * create (did:plc and did:web), resolve, rotate the signing key and the rotation keys, adopt,
 * transfer, deactivate, all through the real HTTP server with service auth; plus keys at rest (no
 * raw private key in the database file or the logs) and KEK rotation.
 */
import { readFileSync, existsSync } from 'node:fs'
import plcLib from '@did-plc/lib'
import t from 'tap'
import { Keypair } from '../../src/crypto/keypair.js'
import { parseSpaceToken, verifySpaceToken } from '../../src/crypto/space-token.js'
import { getServiceEndpoint, getVerificationKey } from '../../src/identity/did-doc.js'
import { formatDidKey } from '../../src/crypto/did-key.js'
import { DidResolver } from '../../src/identity/resolver.js'
import { SafeFetcher } from '../../src/net/safe-fetch.js'
import { systemClock } from '../../src/clock.js'
import { runCli } from '../../src/cli.js'
import { loadConfig } from '../../src/config.js'
import { createContext } from '../../src/context.js'
import { TestArbiter } from '../_helpers/arbiter.js'
import { freePort, runGatehouse } from '../_helpers/process.js'
import { DidWebHost, PlcDirectory, plcSigner } from '../_helpers/identities.js'
import { serviceJwt } from '../_helpers/tokens.js'

const lib = plcLib as unknown as {
  signOperation(op: unknown, signer: unknown): Promise<Record<string, unknown>>
}

type Tap = Parameters<typeof TestArbiter.create>[0] & { name?: string }

async function world(t: Tap, env: Record<string, string> = {}) {
  const plc = await PlcDirectory.start(t)
  const web = await DidWebHost.start(t)
  const alice = web.create('alice')
  const port = await freePort()
  const a = await TestArbiter.create(t, {
    port,
    env: {
      GATEHOUSE_PLC_URL: plc.url,
      GATEHOUSE_PUBLIC_URL: `http://localhost:${port}`,
      GATEHOUSE_DID_WEB_HOSTS: `localhost%3A${port}`,
      GATEHOUSE_AUTHORITY_CREATORS: alice.did,
      ...env,
    },
  })
  /** A verifier of our own, outside Gatehouse, with its own cache. */
  const verifier = new DidResolver(
    new SafeFetcher({ allowPrivate: true, timeoutMs: 2000, maxBytes: 1 << 20 }),
    systemClock,
    { plcUrl: plc.url, cacheTtlMs: 3_600_000, cacheMaxEntries: 100 },
  )
  const call = async (
    nsid: string,
    body: Record<string, unknown> | undefined,
    as = alice,
    aud = a.ctx.cfg.service.did,
  ) => {
    const jwt = serviceJwt({ iss: as, aud, lxm: nsid, nowSec: a.clock.nowSec() })
    const res = await a.fetch(
      body === undefined ? `/xrpc/${nsid}` : `/xrpc/${nsid}`,
      body === undefined
        ? { headers: { authorization: `Bearer ${jwt}` } }
        : {
            method: 'POST',
            headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' },
            body: JSON.stringify(body),
          },
    )
    return { status: res.status, body: (await res.json()) as Record<string, any> }
  }
  const get = async (nsid: string, query: string, as = alice) => {
    const jwt = serviceJwt({
      iss: as,
      aud: a.ctx.cfg.service.did,
      lxm: nsid,
      nowSec: a.clock.nowSec(),
    })
    const res = await a.fetch(`/xrpc/${nsid}?${query}`, {
      headers: { authorization: `Bearer ${jwt}` },
    })
    return { status: res.status, body: (await res.json()) as Record<string, any> }
  }
  return { a, plc, web, alice, port, verifier, call, get }
}

/** Runs `gatehouse kek VERB` in process against the world's database and data dir; its JSON result. */
async function kekCli(
  w: Awaited<ReturnType<typeof world>>,
  verb: 'rotate' | 'rewrap',
  env: Record<string, string> = {},
): Promise<{ rewrapped: number; kekId: string }> {
  const { config, secrets } = loadConfig({
    GATEHOUSE_DATA_DIR: w.a.dataDir,
    GATEHOUSE_DATABASE_URL: w.a.database.url,
    GATEHOUSE_PLC_URL: w.plc.url,
    GATEHOUSE_ALLOW_PRIVATE_NETWORK: 'true',
    GATEHOUSE_LOG_LEVEL: 'silent',
    ...env,
  })
  const out: string[] = []
  await runCli(['kek', verb], config, secrets, (l) => out.push(l))
  return JSON.parse(out[0]!) as { rewrapped: number; kekId: string }
}

const NS = 'dev.gatehouse.authority'
const activeKey = (view: Record<string, any>, purpose: string) =>
  (view.keys as { purpose: string; status: string; publicKey: string }[]).find(
    (k) => k.purpose === purpose && k.status === 'active',
  )?.publicKey
const published = (doc: Parameters<typeof getVerificationKey>[0], kid: string) => {
  const k = getVerificationKey(doc, kid)
  return k ? formatDidKey(k.curve, k.publicKey) : undefined
}

t.test('create a did:plc: the directory serves our keys, our service and the handle', async (t) => {
  const w = await world(t)
  const owner = Keypair.generate('secp256k1')
  const res = await w.call(`${NS}.createAuthority`, {
    method: 'plc',
    handle: 'forum.example.com',
    ownerRotationKey: owner.did(),
  })
  t.equal(res.status, 200, JSON.stringify(res.body))
  const did = res.body.did as string
  t.match(did, /^did:plc:[a-z2-7]{24}$/)
  t.equal(res.body.status, 'active')
  t.equal(res.body.origin, 'created')
  t.notOk(JSON.stringify(res.body).match(/secret|privateKey/i), 'no secret in the answer')

  const doc = await w.verifier.resolve(did)
  t.equal(published(doc, '#atproto'), activeKey(res.body, 'atproto'))
  const svc = getServiceEndpoint(doc, '#atproto_space_host')
  t.same(svc, { status: 'found', endpoint: `http://localhost:${w.port}` })
  t.same(doc.alsoKnownAs, ['at://forum.example.com'])
  const data = (await (await fetch(`${w.plc.url}/${did}/data`)).json()) as {
    rotationKeys: string[]
  }
  t.same(
    data.rotationKeys,
    [owner.did(), activeKey(res.body, 'rotation')],
    "the owner's rotation key ranks above Gatehouse's",
  )

  t.equal(await w.a.ctx.managers.roleOf(did, w.alice.did), 'owner', 'the creator owns it')
  const got = await w.get(`${NS}.getAuthority`, `did=${encodeURIComponent(did)}`)
  t.equal(got.status, 200)
  t.equal(got.body.did, did)

  const bob = w.web.create('bob')
  const refused = await w.call(`${NS}.createAuthority`, { method: 'plc' }, bob)
  t.equal(refused.status, 403, 'only configured creators may create')
  t.equal(refused.body.error, 'Forbidden')
  const notOwner = await w.call(`${NS}.rotateSigningKey`, { did }, bob)
  t.equal(notOwner.status, 400)
  t.equal(notOwner.body.error, 'NotSpaceOwner')
  t.match(
    await w.a.ctx.audit.query({ authority: did, limit: 10 }),
    [
      { actor: bob.did, door: 'xrpc', action: 'refused', outcome: 'refused' },
      {
        actor: w.alice.did,
        door: 'xrpc',
        action: 'authority.create',
        after: new RegExp(`"origin":"created".*"rotation":"${activeKey(res.body, 'rotation')}"`),
      },
    ],
    'the creation and the refusal are in its audit log',
  )
  const unknown = await w.call(`${NS}.deactivateAuthority`, {
    did: 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa',
  })
  t.equal(unknown.body.error, 'AuthorityNotFound')
})

t.test(
  'rotating the signing key: old credentials keep verifying where cached, new ones after one refresh',
  async (t) => {
    const w = await world(t)
    const created = await w.call(`${NS}.createAuthority`, { method: 'plc' })
    const did = created.body.did as string
    const space = `at://${did}/space/com.example.forum/main`
    const config = (await w.a.ctx.spaces.create({
      authority: did,
      spaceType: 'com.example.forum',
      skey: 'main',
      readPolicy: { kind: 'public' },
      writePolicy: { kind: 'member-list' },
      appAccess: { kind: 'open' },
    })) as { uri: string }
    t.equal(config.uri, space)
    const found = await w.a.ctx.spaces.lookup(space)
    if (found.state !== 'active') throw new Error('space not active')
    const mint = () =>
      w.a.ctx.credentials.issue({
        config: found.config,
        user: w.alice.did,
        clientId: undefined,
        binding: { kind: 'signature', keyDid: Keypair.generate('p256').did() },
      })
    let refreshes = 0
    const verify = async (token: string) => {
      const parsed = parseSpaceToken('credential', token, w.a.clock.nowSec())
      await verifySpaceToken(parsed, {
        nowSec: w.a.clock.nowSec(),
        getSigningKey: async (iss, kid, force) => {
          if (force) refreshes++
          return w.verifier.getKey(iss, kid, force)
        },
      })
    }
    const before = await mint()
    await verify(before)
    t.equal(refreshes, 0)

    const rotated = await w.call(`${NS}.rotateSigningKey`, { did })
    t.equal(rotated.status, 200, JSON.stringify(rotated.body))
    t.not(activeKey(rotated.body, 'atproto'), activeKey(created.body, 'atproto'), 'a new key')
    t.ok(
      (rotated.body.keys as { status: string; publicKey: string }[]).some(
        (k) => k.status === 'retired' && k.publicKey === activeKey(created.body, 'atproto'),
      ),
      'the old key is kept, retired',
    )
    const fresh = await new DidResolver(
      new SafeFetcher({ allowPrivate: true, timeoutMs: 2000, maxBytes: 1 << 20 }),
      systemClock,
      { plcUrl: w.plc.url, cacheTtlMs: 0, cacheMaxEntries: 1 },
    ).resolve(did)
    t.equal(
      published(fresh, '#atproto'),
      activeKey(rotated.body, 'atproto'),
      'the directory has it',
    )

    await verify(before)
    t.equal(
      refreshes,
      0,
      'a credential minted before the rotation still verifies (cached document)',
    )
    const after = await mint()
    await verify(after)
    t.equal(refreshes, 1, 'a new credential verifies after exactly one forced refresh')
    await verify(after)
    t.equal(refreshes, 1)
  },
)

t.test(
  'rotating rotation keys; an operation signed by a key outside the set is refused',
  async (t) => {
    const w = await world(t)
    const owner = Keypair.generate('secp256k1')
    const created = await w.call(`${NS}.createAuthority`, {
      method: 'plc',
      ownerRotationKey: owner.did(),
    })
    const did = created.body.did as string
    const oldRotation = activeKey(created.body, 'rotation')
    const owner2 = Keypair.generate('secp256k1')
    const rotated = await w.call(`${NS}.rotateRotationKeys`, {
      did,
      ownerRotationKey: owner2.did(),
    })
    t.equal(rotated.status, 200, JSON.stringify(rotated.body))
    const newRotation = activeKey(rotated.body, 'rotation')
    t.not(newRotation, oldRotation)
    t.equal(rotated.body.ownerRotationKey, owner2.did())
    const data = (await (await fetch(`${w.plc.url}/${did}/data`)).json()) as {
      rotationKeys: string[]
    }
    t.same(data.rotationKeys, [owner2.did(), newRotation])

    // The retired owner key signs a perfectly formed operation: the directory refuses it.
    const last = await (await fetch(`${w.plc.url}/${did}/log/last`)).json()
    const { createUpdateOp } = plcLib as unknown as {
      createUpdateOp(l: unknown, s: unknown, fn: (n: any) => any): Promise<unknown>
    }
    const op = await createUpdateOp(last, plcSigner(owner), (n) => ({
      ...n,
      alsoKnownAs: ['at://x.test'],
    }))
    const res = await fetch(`${w.plc.url}/${did}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(op),
    })
    t.equal(res.status, 400, 'refused by the directory')

    // Gatehouse still controls the DID with its new rotation key.
    const again = await w.call(`${NS}.rotateSigningKey`, { did })
    t.equal(again.status, 200, JSON.stringify(again.body))
  },
)

t.test('adopt an existing did:plc: pending until its owner publishes our keys', async (t) => {
  const w = await world(t)
  const account = await w.plc.createAccount()
  const adopted = await w.call(`${NS}.adoptAuthority`, { did: account.did })
  t.equal(adopted.status, 200, JSON.stringify(adopted.body))
  t.equal(adopted.body.authority.status, 'pending')
  const op = adopted.body.plcOperation as Record<string, any>
  t.equal(op.type, 'plc_operation')
  t.notOk('sig' in op, 'unsigned: the owner signs it')
  t.equal(op.services.atproto_space_host.endpoint, `http://localhost:${w.port}`)

  t.equal(await w.a.ctx.authorities.isActive(account.did), false, 'not answering for it yet')
  const early = await w.call(`${NS}.activateAuthority`, { did: account.did })
  t.equal(early.status, 400)
  t.equal(early.body.error, 'DocumentNotPublished')

  const signed = await lib.signOperation(op, plcSigner(account.rotationKey))
  const submitted = await fetch(`${w.plc.url}/${account.did}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(signed),
  })
  t.equal(submitted.status, 200, await submitted.text())

  const activated = await w.call(`${NS}.activateAuthority`, { did: account.did })
  t.equal(activated.status, 200, JSON.stringify(activated.body))
  t.equal(activated.body.status, 'active')
  t.equal(activated.body.origin, 'adopted')
  t.equal(await w.a.ctx.authorities.isActive(account.did), true)
  const doc = await w.verifier.resolve(account.did, { forceRefresh: true })
  t.equal(published(doc, '#atproto'), activeKey(activated.body, 'atproto'))
  // Gatehouse's rotation key made it into the set, below the owner's: it can rotate now.
  const rotated = await w.call(`${NS}.rotateSigningKey`, { did: account.did })
  t.equal(rotated.status, 200, JSON.stringify(rotated.body))
})

t.test(
  'adopted without our rotation key: active, but only its owner can change the document',
  async (t) => {
    const w = await world(t)
    const account = await w.plc.createAccount()
    const adopted = await w.call(`${NS}.adoptAuthority`, { did: account.did })
    const op = adopted.body.plcOperation as Record<string, any>
    // The owner keeps rotation to themselves.
    const mine = { ...op, rotationKeys: [account.rotationKey.did()] }
    const signed = await lib.signOperation(mine, plcSigner(account.rotationKey))
    const submitted = await fetch(`${w.plc.url}/${account.did}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(signed),
    })
    t.equal(submitted.status, 200)
    const activated = await w.call(`${NS}.activateAuthority`, { did: account.did })
    t.equal(activated.body.status, 'active')
    t.notOk(
      (activated.body.keys as { purpose: string }[]).some((k) => k.purpose === 'rotation'),
      'no rotation key kept',
    )
    const rotate = await w.call(`${NS}.rotateSigningKey`, { did: account.did })
    t.equal(rotate.body.error, 'InvalidAuthorityState')
    t.match(rotate.body.message, /only its owner/)
  },
)

t.test('an unconfirmed change blocks the next one until activate settles it', async (t) => {
  const w = await world(t)
  const created = await w.call(`${NS}.createAuthority`, { method: 'plc' })
  const did = created.body.did as string
  // What an operation the directory never answered leaves behind: a pending key.
  await w.a.ctx.authorities.addKeys(did, { atproto: Keypair.generate('secp256k1') }, 'pending')
  const blocked = await w.call(`${NS}.rotateSigningKey`, { did })
  t.equal(blocked.body.error, 'InvalidAuthorityState')
  t.match(blocked.body.message, /never confirmed/)
  const settled = await w.call(`${NS}.activateAuthority`, { did })
  t.equal(settled.status, 200, JSON.stringify(settled.body))
  t.notOk(
    (settled.body.keys as { status: string }[]).some((k) => k.status === 'pending'),
    'the key the directory never took is dropped',
  )
  t.equal(
    activeKey(settled.body, 'atproto'),
    activeKey(created.body, 'atproto'),
    'the old key stays',
  )
  const rotated = await w.call(`${NS}.rotateSigningKey`, { did })
  t.equal(rotated.status, 200)
})

t.test(
  '#atproto_pds: published at creation, withdrawn and restored by updateAuthority, removed by transfer',
  async (t) => {
    const w = await world(t)
    const here = { status: 'found', endpoint: `http://localhost:${w.port}` }
    const services = async (did: string) => {
      const doc = await w.verifier.resolve(did, { forceRefresh: true })
      return {
        pds: getServiceEndpoint(doc, '#atproto_pds'),
        spaceHost: getServiceEndpoint(doc, '#atproto_space_host'),
        pdsType: doc.service?.find((s) => s.id === '#atproto_pds' || s.id === `${did}#atproto_pds`)
          ?.type,
      }
    }
    const created = await w.call(`${NS}.createAuthority`, { method: 'plc' })
    t.equal(created.status, 200, JSON.stringify(created.body))
    t.equal(created.body.pdsService, true, 'on by default')
    const did = created.body.did as string
    t.same(await services(did), {
      pds: here,
      spaceHost: here,
      pdsType: 'AtprotoPersonalDataServer',
    })

    const off = await w.call(`${NS}.updateAuthority`, { did, pdsService: false })
    t.equal(off.status, 200, JSON.stringify(off.body))
    t.equal(off.body.pdsService, false)
    t.same(await services(did), { pds: { status: 'absent' }, spaceHost: here, pdsType: undefined })
    const again = await w.call(`${NS}.updateAuthority`, { did, pdsService: false })
    t.equal(again.status, 200, 'turning it off twice is a no-op')
    const on = await w.call(`${NS}.updateAuthority`, { did, pdsService: true })
    t.equal(on.body.pdsService, true)
    t.same((await services(did)).pds, here, 'published again')
    const show = await w.get(`${NS}.getAuthority`, `did=${encodeURIComponent(did)}`)
    t.equal(show.body.pdsService, true)

    const heir = Keypair.generate('secp256k1')
    const moved = await w.call(`${NS}.transferAuthority`, { did, rotationKeys: [heir.did()] })
    t.equal(moved.status, 200, JSON.stringify(moved.body))
    t.same(
      await services(did),
      { pds: { status: 'absent' }, spaceHost: { status: 'absent' }, pdsType: undefined },
      'transfer removes both',
    )

    // Created with it off: only the space host is published.
    const quiet = await w.call(`${NS}.createAuthority`, { method: 'plc', pdsService: false })
    t.equal(quiet.body.pdsService, false)
    t.same((await services(quiet.body.did)).pds, { status: 'absent' })

    // did:web: in the document Gatehouse serves, from the start and after a change.
    const web = `did:web:localhost%3A${w.port}:c:club`
    const createdWeb = await w.call(`${NS}.createAuthority`, { method: 'web', did: web })
    t.equal(createdWeb.body.pdsService, true)
    t.same(await services(web), {
      pds: here,
      spaceHost: here,
      pdsType: 'AtprotoPersonalDataServer',
    })
    await w.call(`${NS}.updateAuthority`, { did: web, pdsService: false })
    t.same((await services(web)).pds, { status: 'absent' })

    // An adopted account keeps its own PDS entry unless asked otherwise.
    const account = await w.plc.createAccount({ pds: 'https://pds.example.com' })
    const adopted = await w.call(`${NS}.adoptAuthority`, { did: account.did })
    t.equal(adopted.body.authority.pdsService, false)
    t.same(adopted.body.plcOperation.services.atproto_pds, {
      type: 'AtprotoPersonalDataServer',
      endpoint: 'https://pds.example.com',
    })
    const forced = await w.plc.createAccount({ pds: 'https://pds.example.com' })
    const taken = await w.call(`${NS}.adoptAuthority`, { did: forced.did, pdsService: true })
    t.equal(taken.body.authority.pdsService, true)
    t.equal(taken.body.plcOperation.services.atproto_pds.endpoint, `http://localhost:${w.port}`)
    t.equal(
      (await w.call(`${NS}.activateAuthority`, { did: forced.did })).body.error,
      'DocumentNotPublished',
    )
    const signed = await lib.signOperation(taken.body.plcOperation, plcSigner(forced.rotationKey))
    const submitted = await fetch(`${w.plc.url}/${forced.did}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(signed),
    })
    t.equal(submitted.status, 200)
    const activated = await w.call(`${NS}.activateAuthority`, { did: forced.did })
    t.equal(activated.body.status, 'active', JSON.stringify(activated.body))
    t.same((await services(forced.did)).pds, here)
  },
)

t.test('transfer: the directory entry moves, and Gatehouse stops answering', async (t) => {
  const w = await world(t)
  const created = await w.call(`${NS}.createAuthority`, { method: 'plc' })
  const did = created.body.did as string
  const heir = Keypair.generate('secp256k1')
  const heirSigning = Keypair.generate('secp256k1')
  const moved = await w.call(`${NS}.transferAuthority`, {
    did,
    rotationKeys: [heir.did()],
    verificationMethods: { atproto: heirSigning.did() },
    services: {
      atproto_space_host: { type: 'AtprotoSpaceHost', endpoint: 'https://elsewhere.example' },
    },
  })
  t.equal(moved.status, 200, JSON.stringify(moved.body))
  t.equal(moved.body.status, 'transferred')
  const doc = await w.verifier.resolve(did, { forceRefresh: true })
  t.equal(published(doc, '#atproto'), heirSigning.did())
  t.same(getServiceEndpoint(doc, '#atproto_space_host'), {
    status: 'found',
    endpoint: 'https://elsewhere.example',
  })
  t.equal(await w.a.ctx.authorities.isActive(did), false, 'no more minting or relaying')
  const late = await w.call(`${NS}.rotateSigningKey`, { did })
  t.equal(late.body.error, 'InvalidAuthorityState')
  const data = (await (await fetch(`${w.plc.url}/${did}/data`)).json()) as {
    rotationKeys: string[]
  }
  t.same(data.rotationKeys, [heir.did()], 'the heir alone controls it')
  const [last] = await w.a.ctx.audit.query({ authority: did, limit: 1 })
  t.match(last, {
    action: 'authority.transfer',
    before: '{"status":"active"}',
    after: /heir|did:key/,
  })
})

t.test(
  'did:web: Gatehouse serves the document, which resolves; deactivate and activate',
  async (t) => {
    const w = await world(t)
    const did = `did:web:localhost%3A${w.port}:c:forum`
    const created = await w.call(`${NS}.createAuthority`, {
      method: 'web',
      did,
      separateSpaceKey: true,
    })
    t.equal(created.status, 200, JSON.stringify(created.body))
    const doc = await w.verifier.resolve(did)
    t.equal(published(doc, '#atproto'), activeKey(created.body, 'atproto'))
    t.equal(published(doc, '#atproto_space'), activeKey(created.body, 'atproto_space'))
    t.same(getServiceEndpoint(doc, '#atproto_space_host'), {
      status: 'found',
      endpoint: `http://localhost:${w.port}`,
    })
    const signing = await w.a.ctx.authorities.credentialKey(did)
    t.equal(signing?.kid, '#atproto_space', 'credentials are signed with the separate space key')

    const other = await w.call(`${NS}.createAuthority`, {
      method: 'web',
      did: 'did:web:elsewhere.example',
    })
    t.equal(other.body.error, 'DidNotServed')
    const missing = await w.a.fetch('/c/nothing/did.json')
    t.equal(missing.status, 404)

    const off = await w.call(`${NS}.deactivateAuthority`, { did })
    t.equal(off.body.status, 'deactivated')
    t.equal(await w.a.ctx.authorities.isActive(did), false)
    const on = await w.call(`${NS}.activateAuthority`, { did })
    t.equal(on.body.status, 'active')
    t.equal(await w.a.ctx.authorities.isActive(did), true)
    const log = await w.a.ctx.audit.query({ authority: did, limit: 10 })
    t.same(
      log.map((e) => e.action),
      ['authority.activate', 'authority.deactivate', 'authority.create'],
    )
    t.match(log[0], { before: '{"status":"deactivated"}' })
    t.match(await w.a.ctx.audit.verify(did), { ok: true, entries: 3 })
  },
)

t.test('a PLC directory that refuses the genesis leaves nothing behind', async (t) => {
  const w = await world(t, { GATEHOUSE_PLC_URL: 'http://127.0.0.1:9' })
  const res = await w.call(`${NS}.createAuthority`, { method: 'plc' })
  t.equal(res.status, 503)
  t.equal(res.body.error, 'PlcUnavailable')
  t.same(await w.a.ctx.authorities.list(), [], 'no authority row')
  t.equal(await w.a.ctx.db.prisma.authorityKey.count(), 0, 'no key')
  t.equal(await w.a.ctx.db.prisma.auditEntry.count(), 0, 'no audit entry')
})

t.test('keys at rest: no raw private key in the database file or in the logs', async (t) => {
  const w = await world(t)
  const created = await w.call(`${NS}.createAuthority`, { method: 'plc', separateSpaceKey: true })
  const did = created.body.did as string
  await w.call(`${NS}.rotateSigningKey`, { did })
  const secrets: Buffer[] = []
  for (const purpose of ['atproto', 'atproto_space', 'rotation'] as const) {
    const key = await w.a.ctx.authorities.key(did, purpose)
    t.ok(key, purpose)
    secrets.push(Buffer.from(key!.exportSecretKey()))
  }
  const logs = w.a.logs.text()
  for (const s of secrets) {
    for (const form of [s.toString('hex'), s.toString('base64'), s.toString('base64url')]) {
      t.notOk(logs.includes(form), 'not in the logs')
    }
  }
  if (w.a.database.kind !== 'sqlite') return
  await w.a.stop()
  const file = w.a.database.url.slice('file:'.length)
  const bytes = Buffer.concat(
    [file, `${file}-wal`].filter((f) => existsSync(f)).map((f) => readFileSync(f)),
  )
  t.ok(bytes.length > 0)
  for (const s of secrets) {
    t.equal(bytes.indexOf(s), -1, 'raw bytes absent')
    t.equal(bytes.indexOf(Buffer.from(s.toString('hex'))), -1, 'hex absent')
  }
})

t.test('KEK rotation re-seals every key; the old KEK no longer opens anything', async (t) => {
  const w = await world(t)
  const created = await w.call(`${NS}.createAuthority`, { method: 'plc' })
  const did = created.body.did as string
  const before = (await w.a.ctx.authorities.key(did, 'atproto'))!.did()
  await w.a.stop()
  const env = {
    GATEHOUSE_DATA_DIR: w.a.dataDir,
    GATEHOUSE_DATABASE_URL: w.a.database.url,
    GATEHOUSE_PLC_URL: w.plc.url,
    GATEHOUSE_ALLOW_PRIVATE_NETWORK: 'true',
    GATEHOUSE_LOG_LEVEL: 'silent',
  }
  const { config, secrets } = loadConfig(env)
  const kekFile = `${w.a.dataDir}/kek.key`
  const oldKek = readFileSync(kekFile, 'utf8').trim()
  const out: string[] = []
  await runCli(['kek', 'rotate'], config, secrets, (l) => out.push(l))
  const result = JSON.parse(out[0]!) as { rewrapped: number; kekId: string }
  t.equal(result.rewrapped, 2, 'both keys re-sealed')
  const newKek = readFileSync(kekFile, 'utf8').trim()
  t.not(newKek, oldKek)
  t.notOk(newKek.includes('\n'), 'the old KEK is gone from the file')

  const ctx = await createContext(config, secrets)
  t.teardown(() => ctx.destroy())
  t.equal((await ctx.authorities.key(did, 'atproto'))?.did(), before, 'the same key opens')
  const stale = loadConfig({ ...env, GATEHOUSE_KEK: oldKek })
  const oldCtx = await createContext(stale.config, stale.secrets)
  t.teardown(() => oldCtx.destroy())
  await t.rejects(oldCtx.authorities.key(did, 'atproto'), /not loaded/, 'the old KEK opens nothing')
})

t.test(
  'kek rotate while a server runs: it seals under the new KEK, and all opens after a restart',
  async (t) => {
    const w = await world(t)
    const created = await w.call(`${NS}.createAuthority`, { method: 'plc' })
    const did = created.body.did as string
    const { kekId } = await kekCli(w, 'rotate')

    // The running server, started with the old KEK, changes keys after the rotation.
    const rotated = await w.call(`${NS}.rotateSigningKey`, { did })
    t.equal(rotated.status, 200, JSON.stringify(rotated.body))
    const another = await w.call(`${NS}.createAuthority`, { method: 'plc' })
    t.equal(another.status, 200, JSON.stringify(another.body))
    const rows = await w.a.ctx.db.prisma.authorityKey.findMany()
    t.same(
      [...new Set(rows.map((r) => r.kekId))],
      [kekId],
      'every key, old and new, is sealed under the new KEK',
    )

    // After a restart (the key file now holds the new KEK only) everything opens and works.
    await w.a.stop()
    const again = await TestArbiter.create(t, {
      database: w.a.database,
      dataDir: w.a.dataDir,
      env: { GATEHOUSE_PLC_URL: w.plc.url },
    })
    for (const row of rows) {
      t.ok(
        await again.ctx.authorities.key(row.authorityDid, row.purpose as 'atproto'),
        `${row.purpose} key of ${row.authorityDid} opens`,
      )
    }
    const jwt = serviceJwt({
      iss: w.alice,
      aud: again.ctx.cfg.service.did,
      lxm: `${NS}.rotateSigningKey`,
      nowSec: again.clock.nowSec(),
    })
    const res = await again.fetch(`/xrpc/${NS}.rotateSigningKey`, {
      method: 'POST',
      headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' },
      body: JSON.stringify({ did }),
    })
    t.equal(res.status, 200, 'rotate-key works after the restart')
  },
)

t.test(
  'kek rewrap with GATEHOUSE_KEK: a process still on the old KEK seals nothing until restarted',
  async (t) => {
    const oldKek = 'aa'.repeat(32)
    const newKek = 'bb'.repeat(32)
    const w = await world(t, { GATEHOUSE_KEK: oldKek })
    const created = await w.call(`${NS}.createAuthority`, { method: 'plc' })
    const did = created.body.did as string
    const { kekId } = await kekCli(w, 'rewrap', {
      GATEHOUSE_KEK: newKek,
      GATEHOUSE_KEK_RETIRED: oldKek,
    })

    const refused = await w.call(`${NS}.rotateSigningKey`, { did })
    t.equal(refused.status, 500, 'refused: this process does not hold the sealing KEK')
    t.match(w.a.logs.text(), /restart it with that KEK/)
    const rows = await w.a.ctx.db.prisma.authorityKey.findMany()
    t.same([...new Set(rows.map((r) => r.kekId))], [kekId], 'nothing sealed under the old KEK')
  },
)

t.test('the operator CLI creates and shows an authority, and refuses bad usage', async (t) => {
  const plc = await PlcDirectory.start(t)
  const { mkdtempSync, rmSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const dir = mkdtempSync(`${tmpdir()}/gatehouse-cli-`)
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const env = {
    GATEHOUSE_DATA_DIR: dir,
    GATEHOUSE_PLC_URL: plc.url,
    GATEHOUSE_ALLOW_PRIVATE_NETWORK: 'true',
    GATEHOUSE_LOG_LEVEL: 'silent',
  }
  const created = runGatehouse(['authority', 'create', '--plc', '--handle', 'cli.example.com'], env)
  t.equal((await created.exited).code, 0, created.stderr.join('\n'))
  const view = JSON.parse(created.stdout.join('\n')) as { did: string; status: string }
  t.equal(view.status, 'active')
  const doc = (await (await fetch(`${plc.url}/${view.did}`)).json()) as { alsoKnownAs: string[] }
  t.same(doc.alsoKnownAs, ['at://cli.example.com'], 'the directory knows it')

  const shown = runGatehouse(['authority', 'show', view.did], env)
  t.equal((await shown.exited).code, 0)
  t.equal((JSON.parse(shown.stdout.join('\n')) as { did: string }).did, view.did)

  const off = runGatehouse(['authority', 'set', view.did, '--pds-service', 'off'], env)
  t.equal((await off.exited).code, 0, off.stderr.join('\n'))
  t.equal((JSON.parse(off.stdout.join('\n')) as { pdsService: boolean }).pdsService, false)
  const plain = (await (await fetch(`${plc.url}/${view.did}`)).json()) as {
    service: { id: string }[]
  }
  t.same(
    plain.service.map((s) => s.id),
    ['#atproto_space_host'],
    'the directory no longer names a PDS',
  )
  const wrong = runGatehouse(['authority', 'set', view.did, '--pds-service', 'maybe'], env)
  t.equal((await wrong.exited).code, 2)
  t.match(wrong.stderr.join('\n'), /on or off/)

  const bad = runGatehouse(['authority', 'create'], env)
  t.equal((await bad.exited).code, 2)
  t.match(bad.stderr.join('\n'), /--plc or --web/)
  const missing = runGatehouse(['authority', 'deactivate', 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa'], env)
  t.equal((await missing.exited).code, 2)
  t.match(missing.stderr.join('\n'), /AuthorityNotFound/)
})

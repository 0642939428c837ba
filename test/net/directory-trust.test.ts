/**
 * The PLC directory is trusted (reachable on a private network) for the DID paths it serves, and by
 * its own client alone: the PLC client and did:plc resolution. Everything else Gatehouse fetches
 * (client metadata, syncers, managing apps, repo hosts) treats the directory's host like any other
 * private address. Private networks are NOT allowed in these tests, so loopback peers are refused
 * unless this trust lets them through.
 */
import { randomUUID } from 'node:crypto'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import t from 'tap'
import { plcDirectoryService } from '../../src/authorities/plc.js'
import { Keypair } from '../../src/crypto/keypair.js'
import { SafeFetcher } from '../../src/net/safe-fetch.js'
import { TestArbiter } from '../_helpers/arbiter.js'
import { kindOf } from '../_helpers/fetch.js'
import { PlcDirectory } from '../_helpers/identities.js'
import { MockService } from '../_helpers/services.js'
import { registerAuthority, slugOf } from '../_helpers/spaces.js'
import {
  delegationToken,
  exchangeHeaders,
  newHolderKey,
  presentHeaders,
} from '../_helpers/tokens.js'

const DID_PATH = /^\/did:plc:[a-z2-7]{24}$/

/** A did:plc whose document the fake directory serves (24 characters of base32 after the prefix). */
function plcIdentity(name: string, services: Record<string, string> = {}) {
  const did = `did:plc:${name.padEnd(24, 'a')}`
  const key = Keypair.generate('secp256k1')
  const document = {
    '@context': ['https://www.w3.org/ns/did/v1', 'https://w3id.org/security/multikey/v1'],
    id: did,
    alsoKnownAs: [],
    verificationMethod: [
      {
        id: `${did}#atproto`,
        type: 'Multikey',
        controller: did,
        publicKeyMultibase: key.multikey(),
      },
    ],
    service: Object.entries(services).map(([f, endpoint]) => ({
      id: `#${f}`,
      type: 'Service',
      serviceEndpoint: endpoint,
    })),
  }
  return { did, key, document }
}

t.test(
  "a syncer endpoint or client_id on the PLC directory's host is refused; its DID documents are not",
  async (t) => {
    // A stand-in directory on loopback that records every request and answers all of them, so
    // anything Gatehouse sends it would succeed.
    const dir = await MockService.start(t)
    const authority = plcIdentity('authority')
    const user = plcIdentity('user')
    const syncer = plcIdentity('syncer', { atproto_space_syncer: `${dir.origin}/internal/notify` })
    const docs = new Map([authority, user, syncer].map((i) => [`/${i.did}`, i.document]))
    const { privateKey, publicKey } = await generateKeyPair('ES256')
    const jwk = { ...(await exportJWK(publicKey)), kid: 'key-1', alg: 'ES256', use: 'sig' }
    const clientId = `${dir.origin}/internal/client-metadata.json`
    dir.handler = (req, res) => {
      const doc = req.method === 'GET' ? docs.get(req.path) : undefined
      if (doc) return dir.json(res, 200, doc)
      if (req.path === '/internal/client-metadata.json') {
        return dir.json(res, 200, { client_id: clientId, jwks: { keys: [jwk] } })
      }
      dir.json(res, 200, {})
    }

    const a = await TestArbiter.create(t, {
      env: { GATEHOUSE_ALLOW_PRIVATE_NETWORK: 'false', GATEHOUSE_PLC_URL: dir.origin },
    })
    await registerAuthority(a.ctx, authority.did, { atproto: authority.key })
    const space = (
      await a.ctx.spaces.create({
        authority: authority.did,
        spaceType: 'com.example.forum',
        skey: slugOf(t),
        readPolicy: { kind: 'public' },
        writePolicy: { kind: 'member-list' },
        appAccess: { kind: 'open' },
      })
    ).uri
    const exchange = (body: Record<string, unknown>) => {
      const token = delegationToken({ user, space, nowSec: a.clock.nowSec() })
      return a.fetch('/xrpc/com.atproto.space.getSpaceCredential', {
        method: 'POST',
        headers: { ...exchangeHeaders(token, holder), 'content-type': 'application/json' },
        body: JSON.stringify({ space, ...body }),
      })
    }
    const holder = newHolderKey()

    const ok = await exchange({})
    t.equal(ok.status, 200, "a did:plc user's document comes from the directory")
    const { credential } = (await ok.json()) as { credential: string }

    const attestation = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', typ: 'atproto-client-attestation+jwt', kid: 'key-1' })
      .setIssuer(clientId)
      .setSubject(clientId)
      .setAudience(`${authority.did}#atproto_space_host`)
      .setIssuedAt(a.clock.nowSec())
      .setExpirationTime(a.clock.nowSec() + 60)
      .setJti(randomUUID())
      .sign(privateKey)
    const attested = await exchange({ clientAttestation: attestation })
    t.equal(attested.status, 400, "a client_id on the directory's host is not fetched")
    t.match(await attested.json(), { error: 'InvalidClientAttestation' })

    const register = await a.fetch('/xrpc/com.atproto.space.registerNotify', {
      method: 'POST',
      headers: {
        ...presentHeaders(credential, authority.did, holder),
        'content-type': 'application/json',
      },
      body: JSON.stringify({ space, service: `${syncer.did}#atproto_space_syncer` }),
    })
    t.equal(register.status, 400, "a syncer endpoint on the directory's host is refused")
    t.match(await register.json(), { error: 'ServiceNotResolvable' })

    // The fetcher the relay, managing apps and revocation notices use: the host is private to it,
    // DID paths included.
    const post = { headers: { 'content-type': 'application/json' }, body: '{}' }
    t.equal(
      await kindOf(a.ctx.fetcher.postForStatus(`${dir.origin}/internal/notify`, post)),
      'blocked',
    )
    t.equal(await kindOf(a.ctx.fetcher.postForStatus(`${dir.origin}/${user.did}`, post)), 'blocked')
    t.equal(await kindOf(a.ctx.fetcher.getJson(`${dir.origin}/${user.did}`)), 'blocked')

    t.same(
      dir.calls.filter((c) => c.method !== 'GET' || !DID_PATH.test(c.path)).map((c) => c.path),
      [],
      'the directory was asked for DID documents only',
    )
  },
)

t.test("the directory client's fetcher: the directory's DID paths and nothing else", async (t) => {
  const dir = await MockService.start(t, (req, res) => dir.json(res, 200, {}))
  const did = `did:plc:${'b'.repeat(24)}`
  for (const origin of [dir.origin, `http://localhost:${dir.port}`]) {
    const fetcher = new SafeFetcher({
      allowPrivate: false,
      trusted: plcDirectoryService(origin),
      timeoutMs: 2000,
      maxBytes: 1024,
    })
    t.teardown(() => fetcher.close())
    const get = (path: string) => kindOf(fetcher.request(`${origin}${path}`))
    const post = (path: string) =>
      kindOf(fetcher.request(`${origin}${path}`, { method: 'POST', body: '{}' }))
    for (const path of [`/${did}`, `/${did}/data`, `/${did}/log/last`])
      t.equal(await get(path), 'ok', `${origin}: GET ${path}`)
    t.equal(await post(`/${did}`), 'ok', `${origin}: POST /{did}`)
    for (const path of [
      '/some/internal/path',
      '/',
      '/export',
      `/${did}/log`,
      `/${did}?x=1`,
      `/${did}/data/..%2f..%2fadmin`,
      '/did:plc:short',
      '/did:web:example.com',
    ])
      t.equal(await get(path), 'blocked', `${origin}: GET ${path}`)
    for (const path of [`/${did}/data`, `/${did}/log/last`, '/some/internal/path'])
      t.equal(await post(path), 'blocked', `${origin}: POST ${path}`)
    t.equal(
      await kindOf(fetcher.postForStatus(`${origin}/internal`, { headers: {}, body: '' })),
      'blocked',
    )
  }
  t.same(
    dir.calls.map((c) => `${c.method} ${c.path.replace(did, '{did}')}`),
    [
      'GET /{did}',
      'GET /{did}/data',
      'GET /{did}/log/last',
      'POST /{did}',
      'GET /{did}',
      'GET /{did}/data',
      'GET /{did}/log/last',
      'POST /{did}',
    ],
    'only those reached the directory',
  )
})

t.test(
  'with private networks off, Gatehouse still creates, rotates and resolves did:plc authorities',
  async (t) => {
    const plc = await PlcDirectory.start(t)
    const a = await TestArbiter.create(t, {
      env: { GATEHOUSE_ALLOW_PRIVATE_NETWORK: 'false', GATEHOUSE_PLC_URL: plc.url },
    })
    const created = await a.ctx.lifecycle.createPlc({})
    const before = await a.ctx.idResolver.getKey(created.did, '#atproto')
    await a.ctx.lifecycle.rotateSigningKey(created.did, 'atproto')
    const after = await a.ctx.idResolver.getKey(created.did, '#atproto', true)
    t.ok(before && after, 'resolved through the directory')
    t.not(after!.publicKey.toString(), before!.publicKey.toString(), 'the rotation was published')
  },
)

/**
 * DID resolution against real servers on loopback: the reference PLC directory running in-process,
 * and a did:web host. Covers the cache (TTL, size bound, forced refresh), key rotation picked up by
 * one refresh, timeouts, size limits, redirects, the SSRF guard, and service-endpoint fallbacks.
 */
import { createServer } from 'node:http'
import t from 'tap'
import { ManualClock } from '../_helpers/clock.js'
import { hex } from '../_helpers/hex.js'
import {
  DidResolutionError,
  DidResolver,
  ServiceResolutionError,
} from '../../src/identity/resolver.js'
import { FetchError, SafeFetcher } from '../../src/net/safe-fetch.js'
import { TestArbiter } from '../_helpers/arbiter.js'
import { kindOf } from '../_helpers/fetch.js'
import { DidWebHost, PlcDirectory, type WebIdentity } from '../_helpers/identities.js'
import {
  authorityOf,
  delegationToken,
  exchangeHeaders,
  newHolderKey,
  serviceJwt,
} from '../_helpers/tokens.js'
import { Keypair } from '../../src/crypto/keypair.js'
import { defineProcedure } from '../../src/lexicon/method.js'
import { plcDirectoryService } from '../../src/authorities/plc.js'
import { z } from 'zod'

function resolver(
  opts: {
    plcUrl?: string
    allowPrivate?: boolean
    ttlMs?: number
    max?: number
    maxBytes?: number
    timeoutMs?: number
  } = {},
) {
  const clock = new ManualClock()
  const fetchOptions = {
    allowPrivate: opts.allowPrivate ?? true,
    timeoutMs: opts.timeoutMs ?? 2000,
    maxBytes: 1024 * 1024,
  }
  const fetcher = new SafeFetcher(fetchOptions)
  // As createContext: the directory's own client trusts it, for its DID paths.
  const plcFetcher = opts.plcUrl
    ? new SafeFetcher({ ...fetchOptions, trusted: plcDirectoryService(opts.plcUrl) })
    : undefined
  if (plcFetcher) t.teardown(() => plcFetcher.close())
  const r = new DidResolver(fetcher, clock, {
    plcUrl: opts.plcUrl ?? 'http://127.0.0.1:9',
    plcFetcher,
    cacheTtlMs: opts.ttlMs ?? 60_000,
    cacheMaxEntries: opts.max ?? 100,
    cacheMaxBytes: opts.maxBytes,
  })
  return { r, clock, fetcher }
}

t.test('did:plc: resolves through the PLC directory, legacy key form included', async (t) => {
  const plc = await PlcDirectory.start(t)
  const account = await plc.createAccount({ handle: 'alice.test', pds: 'https://pds.example.com' })
  const { r, fetcher } = resolver({ plcUrl: plc.url })
  t.teardown(() => fetcher.close())
  const doc = await r.resolve(account.did)
  t.equal(doc.id, account.did)
  const key = await r.getKey(account.did, '#atproto')
  t.equal(hex(key!.publicKey), hex(account.key.publicKey))
  t.equal(await r.resolveServiceEndpoint(account.did), 'https://pds.example.com')
  await t.rejects(r.resolve('did:plc:aaaaaaaaaaaaaaaaaaaaaaaa'), DidResolutionError)
})

t.test('did:plc: a rotated key is seen on forced refresh, not before', async (t) => {
  const plc = await PlcDirectory.start(t)
  const account = await plc.createAccount()
  const { r, fetcher } = resolver({ plcUrl: plc.url })
  t.teardown(() => fetcher.close())
  const before = await r.getKey(account.did, '#atproto')
  const old = await account.rotateSigningKey()
  t.equal(
    hex((await r.getKey(account.did, '#atproto'))!.publicKey),
    hex(before!.publicKey),
    'cached',
  )
  t.equal(
    hex((await r.getKey(account.did, '#atproto', true))!.publicKey),
    hex(account.key.publicKey),
    'refreshed',
  )
  t.not(hex(old.publicKey), hex(account.key.publicKey))
})

t.test('did:plc: the directory refuses an operation signed outside the rotation set', async (t) => {
  const plc = await PlcDirectory.start(t)
  const account = await plc.createAccount()
  const { Keypair } = await import('../../src/crypto/keypair.js')
  account.rotationKey = Keypair.generate('secp256k1')
  await t.rejects(account.rotateSigningKey(), /400/)
})

t.test(
  'through the server: a PLC user who rotated is accepted after exactly one refresh',
  async (t) => {
    const plc = await PlcDirectory.start(t)
    const user = await plc.createAccount()
    const web = await DidWebHost.start(t)
    const authority = web.create('space-owner')
    const exchange = defineProcedure({
      nsid: 'dev.gatehouse.test.exchange',
      input: undefined,
      output: z.any(),
    })
    const a = await TestArbiter.create(t, {
      env: { GATEHOUSE_PLC_URL: plc.url },
      beforeListen(app, ctx) {
        app.xrpc.add(exchange, {
          auth: ctx.auth.delegationToken,
          handler: async ({ auth }) => auth,
        })
      },
    })
    const space = `at://${authority.did}/space/com.example.forum/rotation`
    const post = async () => {
      const token = delegationToken({ user, space, nowSec: a.clock.nowSec() })
      return a.fetch('/xrpc/dev.gatehouse.test.exchange', {
        method: 'POST',
        headers: exchangeHeaders(token, newHolderKey()),
      })
    }
    t.equal((await post()).status, 200)
    const old = await user.rotateSigningKey()
    t.equal((await post()).status, 200, 'new key: one refresh, then accepted')
    const stale = delegationToken({
      user: { did: user.did, key: old },
      space,
      nowSec: a.clock.nowSec(),
    })
    const res = await a.fetch('/xrpc/dev.gatehouse.test.exchange', {
      method: 'POST',
      headers: exchangeHeaders(stale, newHolderKey()),
    })
    t.equal(res.status, 401)
    t.match(await res.json(), { error: 'BadJwtSignature' }, 'the old key no longer verifies')
  },
)

t.test('did:web: cache hit, TTL expiry, forced refresh, size bound', async (t) => {
  const web = await DidWebHost.start(t)
  const ids = [web.create('a'), web.create('b'), web.create('c')]
  const { r, clock, fetcher } = resolver({ ttlMs: 10_000, max: 2 })
  t.teardown(() => fetcher.close())
  await r.resolve(ids[0]!.did)
  await r.resolve(ids[0]!.did)
  t.equal(web.hitsFor(ids[0]!), 1, 'second resolve served from cache')
  clock.advance(10_001)
  await r.resolve(ids[0]!.did)
  t.equal(web.hitsFor(ids[0]!), 2, 'refetched after the TTL')
  await r.resolve(ids[0]!.did, { forceRefresh: true })
  t.equal(web.hitsFor(ids[0]!), 3, 'forced refresh bypasses the cache')
  await Promise.all([
    r.resolve(ids[1]!.did, { forceRefresh: true }),
    r.resolve(ids[1]!.did, { forceRefresh: true }),
  ])
  t.equal(web.hitsFor(ids[1]!), 1, 'concurrent refreshes share one fetch')
  await r.resolve(ids[2]!.did)
  await r.resolve(ids[0]!.did)
  t.equal(web.hitsFor(ids[0]!), 4, 'the least recently used entry was evicted (bound 2)')
})

/** Services enough to bring a did:web document to about `kib` KiB (kept when it is parsed). */
function padding(kib: number): WebIdentity['services'] {
  const services: WebIdentity['services'] = {
    atproto_pds: { type: 'AtprotoPersonalDataServer', endpoint: 'https://pds.example.com' },
  }
  for (let i = 0; i < kib; i++) {
    services[`pad${i}`] = { type: 'Padding', endpoint: `https://pad.example/${'p'.repeat(960)}` }
  }
  return services
}

t.test('did:web: the cache is bounded by bytes too, least recently used first', async (t) => {
  const web = await DidWebHost.start(t)
  const [a, b, c] = ['a', 'b', 'c'].map((n) => web.create(n, { services: padding(10) }))
  const { r, fetcher } = resolver({ max: 100, maxBytes: 25 * 1024 })
  t.teardown(() => fetcher.close())
  await r.resolve(a!.did)
  await r.resolve(b!.did)
  await r.resolve(c!.did)
  await r.resolve(c!.did)
  await r.resolve(b!.did)
  t.same([web.hitsFor(b!), web.hitsFor(c!)], [1, 1], 'the two most recent were kept')
  await r.resolve(a!.did)
  t.equal(web.hitsFor(a!), 2, 'the least recently used was dropped')
  await r.resolve(b!.did)
  t.equal(web.hitsFor(b!), 1, 'b was used after c, so c made room for a')
  await r.resolve(c!.did)
  t.equal(web.hitsFor(c!), 2)
  t.ok(r.verified.size.bytes <= 25 * 1024, 'three 10 KiB documents do not fit in 25 KiB')
  t.equal(r.verified.size.entries, 2)
})

t.test(
  'a DID document over GATEHOUSE_DID_DOC_MAX_BYTES is refused, its issuer with it',
  async (t) => {
    const web = await DidWebHost.start(t)
    const a = await TestArbiter.create(t)
    const lxm = 'com.atproto.simplespace.getSpace'
    const space = `at://${web.create('authority').did}/space/com.example.forum/size`
    const ask = (iss: WebIdentity) =>
      a.fetch(`/xrpc/${lxm}?${new URLSearchParams({ space })}`, {
        headers: {
          authorization: `Bearer ${serviceJwt({ iss, aud: authorityOf(space), lxm, nowSec: a.clock.nowSec() })}`,
        },
      })
    const fits = web.create('fits', { services: padding(28) })
    const over = web.create('over', { services: padding(40) })
    const fitted = await ask(fits)
    t.match(
      { status: fitted.status, body: await fitted.json() },
      { status: 400, body: { error: 'NotSpaceOwner' } },
      'a 29 KiB document: authenticated, then refused as a stranger',
    )
    const refused = await ask(over)
    t.match(
      { status: refused.status, body: await refused.json() },
      { status: 401, body: { error: 'BadJwtIss' } },
      'a 41 KiB document (default limit 32 KiB): the issuer cannot be resolved',
    )
    t.equal(web.hitsFor(over), 1, 'fetched once, and given up while it arrived')
    t.equal(a.ctx.idResolver.verified.size.entries, 1, 'only the document that fit is kept')
  },
)

t.test(
  'through the server: tokens that fail their signature check cannot push a peer out of the cache',
  async (t) => {
    const web = await DidWebHost.start(t)
    // Eight entries in all: the unverified tier is one of them.
    const a = await TestArbiter.create(t, { env: { GATEHOUSE_DID_CACHE_MAX_ENTRIES: '8' } })
    const lxm = 'com.atproto.simplespace.getSpace'
    const space = `at://${web.create('authority').did}/space/com.example.forum/strangers`
    const ask = (iss: WebIdentity, key = iss.key) =>
      a.fetch(`/xrpc/${lxm}?${new URLSearchParams({ space })}`, {
        headers: {
          authorization: `Bearer ${serviceJwt({ iss: { did: iss.did, key }, aud: authorityOf(space), lxm, nowSec: a.clock.nowSec() })}`,
        },
      })
    const peer = web.create('peer')
    t.equal((await ask(peer)).status, 400, 'the peer authenticates (then is refused as no manager)')
    const forger = Keypair.generate('secp256k1')
    for (let i = 0; i < 20; i++) {
      const res = await ask(web.create(`stranger${i}`), forger)
      t.match(await res.json(), { error: 'BadJwtSignature' }, `stranger ${i}: forged`)
    }
    t.equal((await ask(peer)).status, 400)
    t.equal(web.hitsFor(peer), 1, "the peer's document is still cached")
    const [verified, unverified] = [
      a.ctx.idResolver.verified.size,
      a.ctx.idResolver.unverified.size,
    ]
    t.same(
      [verified.entries, unverified.entries],
      [1, 1],
      "the peer's document is the one verified; the strangers' took turns in the unverified tier",
    )
  },
)

t.test('did:web: document URLs follow the spec; only localhost may be http', async (t) => {
  const { r, fetcher } = resolver()
  t.teardown(() => fetcher.close())
  t.equal(r.documentUrl('did:web:example.com'), 'https://example.com/.well-known/did.json')
  t.equal(
    r.documentUrl('did:web:example.com%3A8443:u:alice'),
    'https://example.com:8443/u/alice/did.json',
  )
  t.equal(r.documentUrl('did:web:localhost%3A3000'), 'http://localhost:3000/.well-known/did.json')
  t.throws(
    () => r.documentUrl('did:key:zQ3shb6pfsEZdm211TCJAQUZx4GTcxsbuUGZ79dKK1unpq7om'),
    DidResolutionError,
  )
  t.throws(() => r.documentUrl('did:plc:short'), DidResolutionError)
  t.throws(() => r.documentUrl('did:web:evil.com%2Fpath'), DidResolutionError)
})

t.test(
  'did:web: a hanging host times out, a huge document and redirects are refused',
  async (t) => {
    const web = await DidWebHost.start(t)
    const id = web.create('slow')
    const { r, fetcher } = resolver({ timeoutMs: 300 })
    t.teardown(() => fetcher.close())
    web.mode = 'hang'
    const started = Date.now()
    const err = (await r.resolve(id.did).catch((e: unknown) => e)) as DidResolutionError
    t.equal(err.reason, 'unreachable')
    t.ok(Date.now() - started < 2000, 'gave up within the timeout')
    t.match((err.cause as FetchError).kind, 'timeout')
    web.mode = 'huge'
    t.match(((await r.resolve(id.did).catch((e: unknown) => e)) as DidResolutionError).cause, {
      kind: 'too_large',
    })
    web.mode = 'redirect'
    t.match(((await r.resolve(id.did).catch((e: unknown) => e)) as DidResolutionError).cause, {
      kind: 'http',
      status: 302,
    })
    web.mode = 'normal'
    t.equal((await r.resolve(id.did)).id, id.did)
  },
)

t.test(
  "SSRF guard: private targets refused unless allowed; the PLC directory's DID paths are trusted by its client",
  async (t) => {
    const web = await DidWebHost.start(t)
    const id = web.create('inside')
    const plc = await PlcDirectory.start(t)
    const account = await plc.createAccount()
    const { r, fetcher } = resolver({ allowPrivate: false, plcUrl: plc.url })
    t.teardown(() => fetcher.close())
    const err = (await r.resolve(id.did).catch((e: unknown) => e)) as DidResolutionError
    t.match(
      err.cause,
      { kind: 'blocked' },
      'localhost resolves to loopback: refused at connect time',
    )
    t.equal(await kindOf(fetcher.request('http://127.0.0.1:1/x')), 'blocked')
    t.equal(await kindOf(fetcher.request('http://[::1]:1/x')), 'blocked')
    t.equal(await kindOf(fetcher.request('http://169.254.169.254/latest/meta-data')), 'blocked')
    t.equal(await kindOf(fetcher.request('file:///etc/passwd')), 'bad_url')
    t.equal(await kindOf(fetcher.request('http://user:pw@example.com/')), 'bad_url')
    t.equal(
      (await r.resolve(account.did)).id,
      account.did,
      'the configured PLC directory is reachable',
    )
    t.equal(
      await kindOf(fetcher.request(`${plc.url}/${account.did}`)),
      'blocked',
      'but not through the fetcher everyone else uses',
    )
  },
)

t.test(
  'postForStatus: the status only; deadlines for the answer and its body; the body cap; SSRF',
  async (t) => {
    const server = createServer((req, res) => {
      req.resume()
      if (req.url === '/hang') return // never answers
      if (req.url === '/trickle') {
        // A byte every 100 ms, forever: each chunk comes well within the per-chunk timeout.
        res.writeHead(200, { 'content-type': 'text/plain' })
        const tick = setInterval(() => res.write('x'), 100)
        res.on('close', () => clearInterval(tick))
        return
      }
      if (req.url === '/drip') {
        res.writeHead(200, { 'content-type': 'text/plain' })
        res.write('first chunk') // and nothing more: the body deadline must fire
        return
      }
      if (req.url === '/moved') {
        res.writeHead(307, { location: `${origin}/target` })
        return res.end()
      }
      if (req.url === '/target') targetHits++
      if (req.url === '/q?x=1') return res.writeHead(203).end()
      res.writeHead(req.url === '/huge' ? 200 : 202, { 'content-type': 'text/plain' })
      res.end(req.url === '/huge' ? 'x'.repeat(200_000) : 'ok')
    })
    let targetHits = 0
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    t.teardown(() => {
      server.closeAllConnections()
      server.close()
    })
    const port = (server.address() as { port: number }).port
    const origin = `http://127.0.0.1:${port}`
    const { fetcher } = resolver({ timeoutMs: 300 })
    t.teardown(() => fetcher.close())
    const post = (path: string) =>
      fetcher.postForStatus(`${origin}${path}`, {
        headers: { 'content-type': 'application/json' },
        body: '{}',
        maxBytes: 1024,
      })
    t.equal(await post('/ok'), 202)
    t.equal(await post('/q?x=1'), 203, 'the query is sent')
    t.equal(await post('/moved'), 307, 'a redirect is an answer, not followed')
    t.equal(targetHits, 0, 'its target never hears of it')
    t.equal(await post('/huge'), 200, 'a body past the cap is dropped, the status still counts')
    t.equal(await post('/ok'), 202, 'and the next request is served')
    let started = Date.now()
    t.equal(await kindOf(post('/hang')), 'timeout', 'no answer: timeout')
    t.ok(Date.now() - started < 2000, 'no answer: gave up within the deadline')
    started = Date.now()
    t.equal(await post('/drip'), 200, 'a stalled body: the status counts, the body is given up')
    t.ok(Date.now() - started < 2000, 'a stalled body: given up within the deadline')
    started = Date.now()
    t.equal(await post('/trickle'), 200, 'a trickling body: the status counts')
    t.ok(Date.now() - started < 1000, 'a trickling body: given up at the deadline in all')
    t.equal(fetcher.check(`${origin}/ok`), fetcher.check(`${origin}/ok`), 'checked URLs are kept')
    const strict = resolver({ allowPrivate: false })
    t.teardown(() => strict.fetcher.close())
    t.equal(
      await kindOf(strict.fetcher.postForStatus(`${origin}/ok`, { headers: {}, body: '' })),
      'blocked',
    )
    t.equal(
      await kindOf(strict.fetcher.postForStatus('ftp://x/', { headers: {}, body: '' })),
      'bad_url',
    )
    t.equal(
      await kindOf(
        strict.fetcher.postForStatus(`http://localhost:${port}/ok`, { headers: {}, body: '' }),
      ),
      'blocked',
      'a name that resolves to loopback is refused when connecting',
    )
  },
)

t.test('service endpoints follow a refreshed document, not an older answer', async (t) => {
  const web = await DidWebHost.start(t)
  const { r, fetcher } = resolver()
  t.teardown(() => fetcher.close())
  const syncer = web.create('moving', {
    services: {
      atproto_space_syncer: { type: 'AtprotoSpaceSyncer', endpoint: 'https://a.example' },
    },
  })
  const service = `${syncer.did}#atproto_space_syncer`
  t.equal(await r.resolveServiceEndpoint(service), 'https://a.example')
  syncer.services.atproto_space_syncer!.endpoint = 'https://b.example'
  t.equal(await r.resolveServiceEndpoint(service), 'https://a.example', 'cached document')
  await r.resolve(syncer.did, { forceRefresh: true })
  t.equal(await r.resolveServiceEndpoint(service), 'https://b.example', 'refreshed document')
})

t.test(
  'service endpoints: fragments, the #atproto_space_host fallback, invalid entries',
  async (t) => {
    const web = await DidWebHost.start(t)
    const { r, fetcher } = resolver()
    t.teardown(() => fetcher.close())
    const host = web.create('host', {
      services: {
        atproto_pds: { type: 'AtprotoPersonalDataServer', endpoint: 'https://pds.example.com/' },
        atproto_space_host: { type: 'AtprotoSpaceHost', endpoint: 'https://gatehouse.example.com' },
        atproto_space_syncer: {
          type: 'AtprotoSpaceSyncer',
          endpoint: 'https://syncer.example.com',
        },
      },
    })
    const pdsOnly = web.create('pds-only')
    const broken = web.create('broken', {
      services: {
        atproto_pds: { type: 'AtprotoPersonalDataServer', endpoint: 'https://pds.example.com' },
        atproto_space_host: { type: 'AtprotoSpaceHost', endpoint: 'ftp://nope' },
      },
    })
    t.equal(
      await r.resolveServiceEndpoint(`${host.did}#atproto_space_host`),
      'https://gatehouse.example.com',
    )
    t.equal(
      await r.resolveServiceEndpoint(`${host.did}#atproto_space_syncer`),
      'https://syncer.example.com',
    )
    t.equal(
      await r.resolveServiceEndpoint(host.did),
      'https://pds.example.com',
      'bare DID: #atproto_pds',
    )
    t.equal(
      await r.resolveServiceEndpoint(`${pdsOnly.did}#atproto_space_host`),
      'https://pds.example.com',
      'absent space host falls back',
    )
    await t.rejects(
      r.resolveServiceEndpoint(`${broken.did}#atproto_space_host`),
      ServiceResolutionError,
      'present but invalid: no fallback',
    )
    await t.rejects(
      r.resolveServiceEndpoint(`${pdsOnly.did}#atproto_space_syncer`),
      ServiceResolutionError,
    )
    await t.rejects(r.resolveServiceEndpoint('not a did#x'), ServiceResolutionError)
    await t.rejects(
      r.resolveServiceEndpoint(`did:web:localhost%3A${web.port}:u:ghost#atproto_pds`),
      ServiceResolutionError,
    )
  },
)

import { createServer, type Server, type ServerResponse } from 'node:http'
import { Keypair } from '../src/crypto/keypair.js'
import {
  delegationToken,
  exchangeHeaders,
  newHolderKey,
  serviceJwt,
} from '../test/_helpers/tokens.js'
import { benchWorld } from './_world.js'
import { httpLoad, type Bench } from './_lib.js'

/**
 * cache-size: hostile did:web issuers against a real served Gatehouse (`gatehouse serve` in a child
 * process, so its memory is its own). Each issuer's DID document is its own, served by a loopback
 * host this bench runs, and padded with service entries (kept when a document is parsed, as an
 * attacker would pad it) to a given size. Every issuer sends one request with a token it really
 * signed (service auth on getSpace, or a delegation token on getSpaceCredential, alternately), so
 * the signature verifies and the request is then refused: the issuers are members of nothing.
 *
 * Two floods of GATEHOUSE_BENCH_ISSUERS (10,000) issuers each: documents of ~61 KB (the size seen
 * in the adversarial run), then documents just under the default GATEHOUSE_DID_DOC_MAX_BYTES. The
 * server's peak resident memory is read after start-up (the idle baseline) and after each flood;
 * the target is to stay under 400 MB.
 */
const ISSUERS = Number(process.env.GATEHOUSE_BENCH_ISSUERS ?? 10_000)
const FLOODS = [
  { name: 'oversized', path: 'big', bytes: 61 * 1024 },
  { name: 'under the limit', path: 'fit', bytes: 31 * 1024 },
] as const
const TARGET_MB = 400
/** Issuers whose tokens are made at once, just before they are sent (tokens live 60 s). */
const BATCH = 1000

/** A did:web host on loopback whose documents, `/<flood>/<i>/did.json`, all name one key. */
class IssuerHost {
  readonly key = Keypair.generate('secp256k1')
  readonly served = new Map<string, number>()
  private readonly padding = new Map<string, string>()
  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(): Promise<IssuerHost> {
    let host!: IssuerHost
    const server = createServer((req, res) => host.handle(req.url ?? '/', res))
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    host = new IssuerHost(server, (server.address() as { port: number }).port)
    for (const f of FLOODS) host.padding.set(f.path, host.pad(f.bytes))
    return host
  }

  did(flood: string, i: number): string {
    return `did:web:localhost%3A${this.port}:${flood}:${i}`
  }

  /** Service entries enough to bring a document to about `bytes`. */
  private pad(bytes: number): string {
    const entries: string[] = []
    for (let n = 0; entries.join(',').length < bytes - 600; n++) {
      entries.push(
        JSON.stringify({
          id: `#pad${n}`,
          type: 'BenchPadding',
          serviceEndpoint: `https://pad${n}.example/${'p'.repeat(960)}`,
        }),
      )
    }
    return entries.join(',')
  }

  private handle(url: string, res: ServerResponse): void {
    const m = /^\/(\w+)\/(\d+)\/did\.json$/.exec(url)
    if (!m || !this.padding.has(m[1]!)) return void res.writeHead(404).end()
    this.served.set(m[1]!, (this.served.get(m[1]!) ?? 0) + 1)
    res.writeHead(200, { 'content-type': 'application/json' }).end(this.body(m[1]!, Number(m[2])))
  }

  /** Issuer `i`'s document in `flood`. */
  body(flood: string, i: number): string {
    const did = this.did(flood, i)
    return (
      `{"@context":["https://www.w3.org/ns/did/v1","https://w3id.org/security/multikey/v1"],` +
      `"id":"${did}","verificationMethod":[{"id":"${did}#atproto","type":"Multikey",` +
      `"controller":"${did}","publicKeyMultibase":"${this.key.multikey()}"}],` +
      `"service":[{"id":"#atproto_pds","type":"AtprotoPersonalDataServer",` +
      `"serviceEndpoint":"https://pds.example.com"},${this.padding.get(flood)!}]}`
    )
  }

  close(): Promise<void> {
    this.server.closeAllConnections()
    return new Promise((r) => this.server.close(() => r()))
  }
}

const bench: Bench = {
  name: 'cache-size',
  async run() {
    const issuers = await IssuerHost.start()
    const world = await benchWorld({
      skey: 'hostile',
      serverProcess: true,
      policy: {
        readPolicy: { kind: 'member-list' },
        writePolicy: { kind: 'member-list' },
        appAccess: { kind: 'open' },
      },
    })
    const { url, authority, space, close } = world
    const peak = world.serverPeakRssMb!
    try {
      // Idle: started, migrated, and a few requests served.
      await httpLoad({ url: `${url}/xrpc/_health`, concurrency: 4, seconds: 1, maxRequests: 500 })
      const idleMb = peak()
      const holder = newHolderKey()
      const figures = [{ name: 'server peak RSS, idle (baseline)', value: idleMb, unit: 'MB' }]
      const ratios: Record<string, number> = {}
      const notes: string[] = []
      let worstMb = idleMb
      const lxm = 'com.atproto.simplespace.getSpace'
      const getSpaceUrl = `${url}/xrpc/${lxm}?${new URLSearchParams({ space })}`
      /**
       * Issuers `from` to `to` of a flood, one request each, half service auth and half delegation
       * tokens. Tokens are made first, so the load generator only sends.
       */
      const floodBatch = async (path: string, from: number, to: number) => {
        const nowSec = Math.floor(Date.now() / 1000)
        const services: Record<string, string>[] = []
        const delegations: Record<string, string>[] = []
        for (let i = from; i < to; i++) {
          const issuer = { did: issuers.did(path, i), key: issuers.key }
          if (i % 2 === 0) {
            const jwt = serviceJwt({ iss: issuer, aud: authority.did, lxm, nowSec })
            services.push({ authorization: `Bearer ${jwt}` })
          } else {
            const token = delegationToken({ user: issuer, space, nowSec })
            delegations.push({
              ...exchangeHeaders(token, holder),
              'content-type': 'application/json',
            })
          }
        }
        const load = { concurrency: 16, seconds: 50 }
        const [s, d] = await Promise.all([
          httpLoad({ ...load, url: getSpaceUrl, headers: services, maxRequests: services.length }),
          httpLoad({
            ...load,
            url: `${url}/xrpc/com.atproto.space.getSpaceCredential`,
            method: 'POST',
            bodies: [JSON.stringify({ space })],
            headers: delegations,
            maxRequests: delegations.length,
          }),
        ])
        return { sent: s.requests + d.requests, refused: s.errors + d.errors }
      }
      for (const flood of FLOODS) {
        const started = performance.now()
        let sent = 0
        let refused = 0
        for (let from = 0; from < ISSUERS; from += BATCH) {
          const result = await floodBatch(flood.path, from, Math.min(ISSUERS, from + BATCH))
          sent += result.sent
          refused += result.refused
        }
        const seconds = (performance.now() - started) / 1000
        const afterMb = peak()
        worstMb = Math.max(worstMb, afterMb)
        figures.push(
          {
            name: `${flood.name}: document size`,
            value: Buffer.byteLength(issuers.body(flood.path, 0)) / 1024,
            unit: 'KiB',
          },
          { name: `${flood.name}: issuers per second`, value: sent / seconds, unit: '/s' },
          { name: `${flood.name}: server peak RSS after`, value: afterMb, unit: 'MB' },
        )
        ratios[`${flood.name}: peak RSS / idle`] = afterMb / idleMb
        notes.push(
          `${flood.name}: ${sent} requests in ${seconds.toFixed(1)} s, ${refused} refused ` +
            `(expected: all), ${issuers.served.get(flood.path) ?? 0} documents served`,
        )
        // What one more issuer of this flood is told.
        const probe = { did: issuers.did(flood.path, ISSUERS), key: issuers.key }
        const nowSec = Math.floor(Date.now() / 1000)
        const res = await fetch(getSpaceUrl, {
          headers: {
            authorization: `Bearer ${serviceJwt({ iss: probe, aud: authority.did, lxm, nowSec })}`,
          },
        })
        notes.push(`${flood.name}: one more issuer gets ${res.status} ${await res.text()}`)
      }
      return {
        bench: 'cache-size',
        figures,
        ratios,
        targets: {
          [`server peak RSS < ${TARGET_MB} MB`]: {
            target: `< ${TARGET_MB} MB`,
            met: worstMb < TARGET_MB,
          },
        },
        notes,
      }
    } finally {
      await close()
      await issuers.close()
    }
  },
}
export default bench

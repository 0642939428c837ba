import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import plcServer from '@did-plc/server'
import plcLib from '@did-plc/lib'
import { Keypair } from '../../src/crypto/keypair.js'

/**
 * Real identity infrastructure on loopback: an in-process PLC directory (@did-plc/server, the
 * reference implementation, on a mock database) and a did:web host serving documents over HTTP.
 */

interface TestLike {
  teardown(fn: () => unknown): void
}

// CommonJS packages without types for their default export shape.
const { PlcServer, Database } = plcServer as unknown as {
  PlcServer: {
    create(o: { db: unknown; port: number }): { start(): Promise<Server>; destroy(): Promise<void> }
  }
  Database: { mock(): unknown }
}
type PlcClient = {
  createDid(o: {
    signingKey: string
    handle: string
    pds: string
    rotationKeys: string[]
    signer: PlcSigner
  }): Promise<string>
  updateAtprotoKey(did: string, signer: PlcSigner, key: string): Promise<void>
  updateRotationKeys(did: string, signer: PlcSigner, keys: string[]): Promise<void>
  getDocument(did: string): Promise<unknown>
}
const { Client } = plcLib as unknown as { Client: new (url: string) => PlcClient }

export interface PlcSigner {
  did(): string
  jwtAlg: string
  sign(msg: Uint8Array): Promise<Uint8Array>
}

/** Adapts our Keypair to the signer shape @did-plc/lib expects. */
export function plcSigner(key: Keypair): PlcSigner {
  return { did: () => key.did(), jwtAlg: key.alg, sign: async (m) => key.sign(m) }
}

export interface Actor {
  did: string
  /** The current `#atproto` signing key. */
  key: Keypair
}

export class PlcDirectory {
  private constructor(
    readonly url: string,
    readonly client: PlcClient,
  ) {}

  static async start(t: TestLike): Promise<PlcDirectory> {
    const server = PlcServer.create({ db: Database.mock(), port: 0 })
    const http = await server.start()
    t.teardown(() => server.destroy())
    const port = (http.address() as { port: number }).port
    const url = `http://127.0.0.1:${port}`
    return new PlcDirectory(url, new Client(url))
  }

  /** A did:plc with a fresh #atproto key and one rotation key, both held by the test. */
  async createAccount(opts: { handle?: string; pds?: string } = {}): Promise<PlcAccount> {
    const rotationKey = Keypair.generate('secp256k1')
    const key = Keypair.generate('secp256k1')
    const did = await this.client.createDid({
      signingKey: key.did(),
      handle: opts.handle ?? `u${Math.random().toString(36).slice(2, 10)}.test`,
      pds: opts.pds ?? 'https://pds.example.com',
      rotationKeys: [rotationKey.did()],
      signer: plcSigner(rotationKey),
    })
    return new PlcAccount(this, did, key, rotationKey)
  }
}

export class PlcAccount implements Actor {
  constructor(
    private readonly plc: PlcDirectory,
    readonly did: string,
    public key: Keypair,
    public rotationKey: Keypair,
  ) {}

  /** Publishes a new #atproto key in the directory; returns the old one. */
  async rotateSigningKey(): Promise<Keypair> {
    const old = this.key
    const next = Keypair.generate('secp256k1')
    await this.plc.client.updateAtprotoKey(this.did, plcSigner(this.rotationKey), next.did())
    this.key = next
    return old
  }
}

export interface WebIdentity extends Actor {
  /** Services in the document, by fragment (`atproto_pds` → URL). */
  services: Record<string, { type: string; endpoint: unknown }>
  /** Extra verification methods (for instance `atproto_space`). */
  extraKeys: Record<string, Keypair>
  rotate(): Keypair
}

/**
 * A did:web host on `localhost:<port>`: `did:web:localhost%3A<port>:u:<name>` documents served at
 * `/u/<name>/did.json`. Counts requests per path; can be told to hang or to answer huge documents.
 */
export class DidWebHost {
  readonly hits = new Map<string, number>()
  mode: 'normal' | 'hang' | 'huge' | 'redirect' = 'normal'
  private readonly identities = new Map<string, WebIdentity>()

  private constructor(readonly port: number) {}

  static async start(t: TestLike): Promise<DidWebHost> {
    let host!: DidWebHost
    const server = createServer((req, res) => host.handle(req, res))
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    host = new DidWebHost((server.address() as { port: number }).port)
    t.teardown(
      () =>
        new Promise<void>((r) => {
          server.closeAllConnections()
          server.close(() => r())
        }),
    )
    return host
  }

  get origin(): string {
    return `http://localhost:${this.port}`
  }

  create(
    name: string,
    opts: { services?: WebIdentity['services']; curve?: 'secp256k1' | 'p256' } = {},
  ): WebIdentity {
    const did = `did:web:localhost%3A${this.port}:u:${name}`
    const identity: WebIdentity = {
      did,
      key: Keypair.generate(opts.curve ?? 'secp256k1'),
      services: opts.services ?? {
        atproto_pds: { type: 'AtprotoPersonalDataServer', endpoint: 'https://pds.example.com' },
      },
      extraKeys: {},
      rotate() {
        const old = identity.key
        identity.key = Keypair.generate(old.curve)
        return old
      },
    }
    this.identities.set(`/u/${name}/did.json`, identity)
    return identity
  }

  document(id: WebIdentity): object {
    const vm = (fragment: string, key: Keypair) => ({
      id: `${id.did}#${fragment}`,
      type: 'Multikey',
      controller: id.did,
      publicKeyMultibase: key.multikey(),
    })
    return {
      '@context': ['https://www.w3.org/ns/did/v1', 'https://w3id.org/security/multikey/v1'],
      id: id.did,
      verificationMethod: [
        vm('atproto', id.key),
        ...Object.entries(id.extraKeys).map(([f, k]) => vm(f, k)),
      ],
      service: Object.entries(id.services).map(([f, s]) => ({
        id: `#${f}`,
        type: s.type,
        serviceEndpoint: s.endpoint,
      })),
    }
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = req.url ?? '/'
    this.hits.set(path, (this.hits.get(path) ?? 0) + 1)
    if (this.mode === 'hang') return // never answers; the client's timeout must fire
    if (this.mode === 'redirect') {
      res.writeHead(302, { location: 'http://127.0.0.1:1/elsewhere' }).end()
      return
    }
    const identity = this.identities.get(path)
    if (!identity) {
      res.writeHead(404).end()
      return
    }
    const doc = this.document(identity)
    const body =
      this.mode === 'huge'
        ? JSON.stringify({ ...doc, padding: 'x'.repeat(200_000) })
        : JSON.stringify(doc)
    res.writeHead(200, { 'content-type': 'application/json' }).end(body)
  }

  hitsFor(id: WebIdentity): number {
    return this.hits.get(`/u/${id.did.split(':').pop()}/did.json`) ?? 0
  }
}

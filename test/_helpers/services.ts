import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { randomUUID } from 'node:crypto'
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose'

/**
 * Real HTTP peers on loopback, each recording what it received: an OAuth client app (metadata, JWKS,
 * attestations), a managing app answering checkUserAccess, and a repo host receiving revocations.
 */

interface TestLike {
  teardown(fn: () => unknown): void
}

export interface Recorded {
  method: string
  path: string
  query: URLSearchParams
  headers: IncomingMessage['headers']
  body: unknown
}

type Handler = (req: Recorded, res: ServerResponse) => void | Promise<void>

/** A loopback HTTP server whose behaviour the test sets per request. */
export class MockService {
  readonly calls: Recorded[] = []
  handler: Handler = (_req, res) => void res.writeHead(404).end()

  private constructor(readonly port: number) {}

  static async start(t: TestLike, handler?: Handler): Promise<MockService> {
    let svc!: MockService
    const server = createServer((req, res) => void svc.handle(req, res))
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    svc = new MockService((server.address() as { port: number }).port)
    if (handler) svc.handler = handler
    t.teardown(
      () =>
        new Promise<void>((r) => {
          server.closeAllConnections()
          server.close(() => r())
        }),
    )
    return svc
  }

  get origin(): string {
    return `http://127.0.0.1:${this.port}`
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const raw = Buffer.concat(chunks).toString('utf8')
    const url = new URL(req.url ?? '/', this.origin)
    const rec: Recorded = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
      body: raw ? JSON.parse(raw) : undefined,
    }
    this.calls.push(rec)
    await this.handler(rec, res)
  }

  json(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
  }
}

/** An OAuth client app: publishes metadata and a JWKS, and signs attestations with its key. */
export class ClientApp {
  private constructor(
    readonly svc: MockService,
    readonly clientId: string,
    private readonly privateKey: CryptoKeyLike,
    readonly publicJwk: JWK,
  ) {}

  static async start(
    t: TestLike,
    opts: { inlineJwks?: boolean; name?: string } = {},
  ): Promise<ClientApp> {
    const { privateKey, publicKey } = await generateKeyPair('ES256')
    const publicJwk = { ...(await exportJWK(publicKey)), kid: 'key-1', alg: 'ES256', use: 'sig' }
    const svc = await MockService.start(t)
    const name = opts.name ?? 'app'
    const clientId = `${svc.origin}/${name}/client-metadata.json`
    svc.handler = (req, res) => {
      if (req.path === `/${name}/client-metadata.json`) {
        return svc.json(res, 200, {
          client_id: clientId,
          client_name: name,
          redirect_uris: [`${svc.origin}/callback`],
          token_endpoint_auth_method: 'private_key_jwt',
          ...(opts.inlineJwks
            ? { jwks: { keys: [publicJwk] } }
            : { jwks_uri: `${svc.origin}/${name}/jwks.json` }),
        })
      }
      if (req.path === `/${name}/jwks.json`) return svc.json(res, 200, { keys: [publicJwk] })
      res.writeHead(404).end()
    }
    return new ClientApp(svc, clientId, privateKey, publicJwk)
  }

  /** An attestation for `authorityDid`'s space host, valid from `nowSec` for `ttlSec`. */
  async attest(opts: {
    authorityDid: string
    nowSec: number
    ttlSec?: number
    aud?: string
    iss?: string
    typ?: string
    kid?: string
    key?: CryptoKeyLike
  }): Promise<string> {
    return new SignJWT({})
      .setProtectedHeader({
        alg: 'ES256',
        typ: opts.typ ?? 'atproto-client-attestation+jwt',
        kid: opts.kid ?? 'key-1',
      })
      .setIssuer(opts.iss ?? this.clientId)
      .setSubject(this.clientId)
      .setAudience(opts.aud ?? `${opts.authorityDid}#atproto_space_host`)
      .setIssuedAt(opts.nowSec)
      .setExpirationTime(opts.nowSec + (opts.ttlSec ?? 60))
      .setJti(randomUUID())
      .sign(opts.key ?? this.privateKey)
  }
}

export type CryptoKeyLike = Awaited<ReturnType<typeof generateKeyPair>>['privateKey']

export async function unpublishedKey(): Promise<CryptoKeyLike> {
  return (await generateKeyPair('ES256')).privateKey
}

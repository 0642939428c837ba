import { hash } from 'node:crypto'
import {
  JoseKey,
  NodeOAuthClient,
  requestLocalLock,
  type NodeSavedSession,
  type NodeSavedState,
  type OAuthClientMetadataInput,
} from '@atproto/oauth-client-node'
import type { AuthorityService } from '../authorities/authority-service.js'
import type { Clock } from '../clock.js'
import type { Config } from '../config.js'
import { curveImpl } from '../crypto/did-key.js'
import type { Db } from '../db/client.js'
import type { KeyVault } from '../keys/vault.js'
import type { SafeFetcher } from '../net/safe-fetch.js'

/** A login started and not finished within this is forgotten (its state row expires). */
const LOGIN_STATE_TTL_MS = 30 * 60_000
/** Largest answer accepted from a PDS, an authorization server or a handle's host. */
const OAUTH_MAX_BYTES = 256 * 1024
/** Key ids of the vault are 16 hex characters; a stored value starts with the one that sealed it. */
const KEK_ID_CHARS = 16
const NULL_BODY = new Set([101, 204, 205, 304])

export interface ManagerOAuthDeps {
  cfg: Pick<Config, 'mode' | 'service' | 'identity' | 'managers'>
  db: Db
  vault: KeyVault
  clock: Clock
  fetcher: SafeFetcher
  authorities: AuthorityService
}

/**
 * The library's state and session stores on `oauth_store`, so any process can finish a login that
 * another started. Values hold tokens and DPoP private keys, so they are sealed under the KEK with
 * kind and key as additional data; one that no longer opens (its KEK retired) reads as absent.
 */
class SealedOauthStore<V> {
  constructor(
    private readonly deps: Pick<ManagerOAuthDeps, 'db' | 'vault' | 'clock'>,
    private readonly kind: 'state' | 'session',
    private readonly ttlMs: number,
  ) {}

  private aad(key: string): string {
    return `gatehouse:oauth:${this.kind}:${key}`
  }

  async set(key: string, value: V): Promise<void> {
    const { db, vault, clock } = this.deps
    const sealed = vault.seal(Buffer.from(JSON.stringify(value)), this.aad(key))
    const row = {
      value: Buffer.concat([Buffer.from(vault.kekId, 'ascii'), sealed]),
      expiresAt: new Date(clock.nowMs() + this.ttlMs),
      updatedAt: clock.now(),
    }
    await db.prisma.oauthStore.upsert({
      where: { kind_key: { kind: this.kind, key } },
      create: { kind: this.kind, key, ...row },
      update: row,
    })
  }

  async get(key: string): Promise<V | undefined> {
    const { db, vault, clock } = this.deps
    const row = await db.prisma.oauthStore.findUnique({
      where: { kind_key: { kind: this.kind, key } },
    })
    if (!row || (row.expiresAt && row.expiresAt.getTime() <= clock.nowMs())) return undefined
    const value = Buffer.from(row.value)
    try {
      const kekId = value.subarray(0, KEK_ID_CHARS).toString('ascii')
      const opened = vault.open(value.subarray(KEK_ID_CHARS), this.aad(key), kekId)
      return JSON.parse(Buffer.from(opened).toString('utf8')) as V
    } catch {
      return undefined
    }
  }

  async del(key: string): Promise<void> {
    await this.deps.db.prisma.oauthStore.deleteMany({ where: { kind: this.kind, key } })
  }
}

/**
 * The library's `fetch`, on our SSRF-guarded fetcher: every request it makes (handle and DID
 * resolution, PDS and authorization-server metadata, PAR, token, revocation) gets the address
 * check, the timeout and the size limit, and no redirects are followed.
 */
function guardedFetch(fetcher: SafeFetcher): typeof globalThis.fetch {
  return async (input, init) => {
    const req = new Request(input, init)
    if (req.method !== 'GET' && req.method !== 'POST')
      throw new TypeError(`${req.method} is not sent by the OAuth client`)
    const res = await fetcher.request(req.url, {
      method: req.method,
      headers: Object.fromEntries(req.headers),
      body: req.method === 'POST' ? await req.text() : undefined,
      maxBytes: OAUTH_MAX_BYTES,
    })
    const headers = Object.entries(res.headers).flatMap(([name, value]) =>
      [value ?? []].flat().map((one): [string, string] => [name, one]),
    )
    const body = NULL_BODY.has(res.status) ? null : res.body
    return new Response(body, { status: res.status, headers })
  }
}

/**
 * Gatehouse as a confidential atproto OAuth client (PAR, PKCE, DPoP, private_key_jwt). The client
 * is built on first use: its P-256 key lives sealed in `authority_key` under the service DID
 * (purpose `oauth_client`), so it is created once, shared by every process and re-sealed by a
 * KEK rotation, and commands that never log anyone in never create it.
 */
export class ManagerOAuth {
  private built: Promise<NodeOAuthClient> | undefined

  constructor(private readonly deps: ManagerOAuthDeps) {}

  client(): Promise<NodeOAuthClient> {
    this.built ??= this.build().catch((err: unknown) => {
      this.built = undefined
      throw err
    })
    return this.built
  }

  private async build(): Promise<NodeOAuthClient> {
    const { cfg, authorities } = this.deps
    const key = await authorities.serviceKey(cfg.service.did, 'oauth_client', 'p256')
    const point = curveImpl('p256').getPublicKey(key.exportSecretKey(), false)
    const [x, y] = [point.subarray(1, 33), point.subarray(33)]
    const kid = `gatehouse-${hash('sha256', point, 'hex').slice(0, 16)}`
    const jwk = {
      ...{ kty: 'EC', crv: 'P-256', alg: 'ES256', kid },
      ...{ x: b64u(x), y: b64u(y), d: b64u(key.exportSecretKey()) },
    }
    const base = cfg.service.publicUrl
    const clientMetadata = {
      client_id: `${base}/oauth/client-metadata.json`,
      client_name: 'Gatehouse',
      redirect_uris: [`${base}/oauth/callback`],
      jwks_uri: `${base}/oauth/jwks.json`,
      scope: 'atproto',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      application_type: 'web',
      token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: 'ES256',
      dpop_bound_access_tokens: true,
    } as OAuthClientMetadataInput
    return new NodeOAuthClient({
      clientMetadata,
      keyset: [await JoseKey.fromJWK(jwk, kid)],
      stateStore: new SealedOauthStore<NodeSavedState>(this.deps, 'state', LOGIN_STATE_TTL_MS),
      // Kept as long as a login session can last: only "log out everywhere" uses it (to revoke).
      sessionStore: new SealedOauthStore<NodeSavedSession>(
        this.deps,
        'session',
        cfg.managers.sessionMaxAgeMs,
      ),
      // Tokens are refreshed only to revoke them, so a lock per process is enough.
      requestLock: requestLocalLock,
      fetch: guardedFetch(this.deps.fetcher),
      plcDirectoryUrl: cfg.identity.plcUrl,
      // A development authorization server runs on http://localhost; production never talks http.
      allowHttp: cfg.mode !== 'production',
    })
  }
}

const b64u = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url')

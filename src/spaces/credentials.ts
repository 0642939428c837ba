import type { AuthorityService } from '../authorities/authority-service.js'
import type { BackgroundQueue } from '../background.js'
import type { KeyBinding } from '../auth/output.js'
import type { RevocationStore } from '../auth/revocations.js'
import type { Clock } from '../clock.js'
import type { Db } from '../db/client.js'
import type { OutboundAuth } from '../auth/outbound.js'
import { createSpaceToken, randomJti } from '../crypto/space-token.js'
import type { DidResolver } from '../identity/resolver.js'
import type { Logger } from '../logger.js'
import { FetchError, type SafeFetcher } from '../net/safe-fetch.js'
import type { SpaceConfig } from '../policy/types.js'
import type { WriterSet } from './writer-set.js'

export const NOTIFY_CREDENTIAL_REVOKED = 'com.atproto.space.notifyCredentialRevoked'
/** The lexicon's limit on jtis per notifyCredentialRevoked call. */
export const REVOCATION_BATCH = 100
/** Receivers keep a revocation for the longest credential lifetime plus twice the skew. */
const RETRYABLE_STATUS = new Set([408, 425, 429, 500, 502, 503, 504, 522, 524])
/**
 * How a repo host without notifyCredentialRevoked (generation A) answers our schema-valid,
 * authority-signed call: the reference PDS proxies an unknown method onward, which refuses our
 * token (400) or has no such method (404, 501). Not a failure: such a host cannot be told, and keeps
 * honouring the credential until it expires (why DPoP-bound credentials are short-lived).
 */
const UNSUPPORTED_STATUS = new Set([400, 404, 501])

export interface CredentialDeps {
  db: Db
  authorities: AuthorityService
  revocations: RevocationStore
  writers: WriterSet
  resolver: DidResolver
  fetcher: SafeFetcher
  background: BackgroundQueue
  clock: Clock
  /** Signs (and reuses) service auth as the authority. */
  outbound: OutboundAuth
  logger: Logger
  /** First retry delay for revocation notices; doubles each attempt. */
  retryBaseMs: number
  retryAttempts: number
}

/** Which space, and whose key signs for it: all revocation needs, even of a deleted space. */
export type SpaceIdentity = Pick<SpaceConfig, 'uri' | 'authority'>

export class CredentialError extends Error {
  override name = 'CredentialError'
}

/**
 * Minting space credentials, remembering every one issued, and revoking them: locally (this host
 * refuses them at once) and at the repo hosts of the space's writers, which hold the space's data
 * (`notifyCredentialRevoked`, addressed to a writer DID each host serves).
 */
export class CredentialService {
  constructor(private readonly deps: CredentialDeps) {}

  /** Signs `{ iss, sub, cnf, iat, exp, jti }` with the authority's credential key and records it. */
  async issue(req: {
    config: SpaceConfig
    user: string
    clientId: string | undefined
    binding: KeyBinding
  }): Promise<string> {
    const { config, binding } = req
    const signing = await this.deps.authorities.credentialKey(config.authority)
    if (!signing) throw new CredentialError(`no signing key held for ${config.authority}`)
    const iat = this.deps.clock.nowSec()
    // DPoP-bound credentials (generation A) get the shorter lifetime: their repo hosts cannot be
    // told of a revocation.
    const exp =
      iat + (binding.kind === 'signature' ? config.credentialTtlSec : config.dpopCredentialTtlSec)
    const jti = randomJti()
    const cnf = binding.kind === 'signature' ? { kid: binding.keyDid } : { jkt: binding.jkt }
    await this.deps.db.hot.execute(
      'INSERT INTO issued_credential (space, jti, user_did, client_id, issued_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)',
      [config.uri, jti, req.user, req.clientId ?? null, new Date(iat * 1000), new Date(exp * 1000)],
    )
    return createSpaceToken(
      'credential',
      { iss: config.authority, sub: config.uri, cnf, iat, exp, jti },
      signing.key,
      signing.kid,
    )
  }

  /** Who the credential `jti` for `space` was issued to, from our issuance record. */
  async holderOf(space: string, jti: string): Promise<string | undefined> {
    const row = await this.deps.db.prisma.issuedCredential.findUnique({
      where: { space_jti: { space, jti } },
      select: { userDid: true },
    })
    return row?.userDid
  }

  /** The users holding live (unexpired, unrevoked) credentials for a space. */
  async liveHolders(space: string): Promise<string[]> {
    const rows = await this.deps.db.prisma.issuedCredential.findMany({
      where: { space, revokedAt: null, expiresAt: { gt: this.deps.clock.now() } },
      select: { userDid: true },
      distinct: ['userDid'],
    })
    return rows.map((r) => r.userDid)
  }

  /**
   * Revokes the live credentials of a space that match `where` (a user, all users but one, an app
   * — `clientId: null` means "issued without an attestation" — or explicit jtis; `{}` is every
   * one). Refused here at once; repo hosts are told in the background: those of the space's
   * writers, or of `opts.writers` when the writer set is already gone (a deleted space). Returns
   * how many were revoked.
   */
  async revoke(
    config: SpaceIdentity,
    where: {
      userDid?: string
      userDidIn?: string[]
      userDidNot?: string
      clientId?: string | null
      clientIdIn?: string[]
      clientIdNotIn?: string[]
      jtis?: string[]
    },
    opts: { writers?: string[] } = {},
  ): Promise<number> {
    const now = this.deps.clock.now()
    const filter = {
      space: config.uri,
      revokedAt: null,
      expiresAt: { gt: now },
      ...(where.userDid !== undefined ? { userDid: where.userDid } : {}),
      ...(where.userDidIn !== undefined ? { userDid: { in: where.userDidIn } } : {}),
      ...(where.userDidNot !== undefined ? { userDid: { not: where.userDidNot } } : {}),
      ...(where.clientId !== undefined ? { clientId: where.clientId } : {}),
      ...(where.clientIdIn !== undefined ? { clientId: { in: where.clientIdIn } } : {}),
      ...(where.clientIdNotIn !== undefined
        ? { OR: [{ clientId: null }, { clientId: { notIn: where.clientIdNotIn } }] }
        : {}),
      ...(where.jtis !== undefined ? { jti: { in: where.jtis } } : {}),
    }
    const revoked = await this.deps.db.transact(async (tx) => {
      const rows = await tx.issuedCredential.findMany({
        where: filter,
        select: { jti: true, expiresAt: true },
      })
      if (rows.length === 0) return rows
      await tx.issuedCredential.updateMany({
        where: { space: config.uri, jti: { in: rows.map((r) => r.jti) } },
        data: { revokedAt: now },
      })
      for (const r of rows) {
        await tx.revokedCredential.upsert({
          where: { space_jti: { space: config.uri, jti: r.jti } },
          create: { space: config.uri, jti: r.jti, expiresAt: r.expiresAt, createdAt: now },
          update: { expiresAt: r.expiresAt },
        })
      }
      return rows
    })
    if (revoked.length > 0) {
      const jtis = revoked.map((r) => r.jti)
      this.deps.background.add('notifyCredentialRevoked', () =>
        this.notifyRepoHosts(config, jtis, opts.writers),
      )
    }
    return revoked.length
  }

  /** One call per repo host (and per 100 jtis), addressed to a writer DID that host serves. */
  private async notifyRepoHosts(
    config: SpaceIdentity,
    jtis: string[],
    writers?: string[],
  ): Promise<void> {
    const hosts = new Map<string, string>()
    for (const did of writers ?? (await this.deps.writers.writers(config.uri))) {
      try {
        const endpoint = await this.deps.resolver.resolveServiceEndpoint(did)
        if (!hosts.has(endpoint)) hosts.set(endpoint, did)
      } catch (err) {
        this.deps.logger.warn(
          { err, did, space: config.uri },
          "cannot resolve a writer's repo host; revocation not sent there",
        )
      }
    }
    const sends: Promise<void>[] = []
    for (const [endpoint, aud] of hosts) {
      for (let i = 0; i < jtis.length; i += REVOCATION_BATCH) {
        sends.push(this.sendWithRetry(config, endpoint, aud, jtis.slice(i, i + REVOCATION_BATCH)))
      }
    }
    await Promise.all(sends)
  }

  private async sendWithRetry(
    config: SpaceIdentity,
    endpoint: string,
    aud: string,
    jtis: string[],
  ): Promise<void> {
    const key = await this.deps.authorities.key(config.authority, 'atproto')
    if (!key) {
      this.deps.logger.error(
        { authority: config.authority },
        'no #atproto key held: revocation not sent',
      )
      return
    }
    const body = JSON.stringify({ space: config.uri, credentials: jtis })
    for (let attempt = 1; ; attempt++) {
      let retryable: boolean
      let detail: string
      try {
        const jwt = await this.deps.outbound.token({
          iss: config.authority,
          aud,
          lxm: NOTIFY_CREDENTIAL_REVOKED,
          key,
        })
        const res = await this.deps.fetcher.request(
          `${endpoint}/xrpc/${NOTIFY_CREDENTIAL_REVOKED}`,
          {
            method: 'POST',
            headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' },
            body,
            maxBytes: 16 * 1024,
          },
        )
        if (res.status === 200) return
        if (UNSUPPORTED_STATUS.has(res.status)) {
          this.deps.logger.info(
            { endpoint, space: config.uri, status: res.status, outcome: 'unsupported' },
            'revocation notice not supported by host (generation A): its credentials lapse at expiry',
          )
          return
        }
        retryable = RETRYABLE_STATUS.has(res.status)
        detail = `status ${res.status}`
      } catch (err) {
        retryable = err instanceof FetchError && (err.kind === 'network' || err.kind === 'timeout')
        detail = (err as Error).message
      }
      if (!retryable || attempt >= this.deps.retryAttempts) {
        this.deps.logger.warn(
          { endpoint, space: config.uri, attempt, detail },
          'revocation notice not delivered',
        )
        return
      }
      // Exponential backoff with 50–100 % jitter.
      const delay = this.deps.retryBaseMs * 2 ** (attempt - 1) * (0.5 + Math.random() / 2)
      await new Promise((r) => setTimeout(r, delay))
    }
  }
}

import { randomUUID } from 'node:crypto'
import type { AuthorityService } from '../authorities/authority-service.js'
import type { KeyBinding } from '../auth/output.js'
import type { Clock } from '../clock.js'
import type { Db } from '../db/client.js'
import { createSpaceToken, randomJti } from '../crypto/space-token.js'
import type { SpaceConfig } from '../policy/types.js'

export interface CredentialDeps {
  db: Db
  authorities: AuthorityService
  clock: Clock
  /** Called once revocation notices are queued, so the relay sends them now. */
  onQueued?: () => void
}

/** Which space, and whose key signs for it: all revocation needs, even of a deleted space. */
export type SpaceIdentity = Pick<SpaceConfig, 'uri' | 'authority'>

export class CredentialError extends Error {
  override name = 'CredentialError'
}

/**
 * Minting space credentials, recording every one issued, and revoking them: here at once, and at
 * the repo hosts of the space's writers, which hold its data (through the relay).
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

  /** The space's issued credentials, newest first, `limit` after `cursor` (a jti); optionally one user's. */
  async list(space: string, opts: { limit: number; cursor?: string; user?: string }) {
    return this.deps.db.prisma.issuedCredential.findMany({
      where: { space, ...(opts.user ? { userDid: opts.user } : {}) },
      orderBy: [{ issuedAt: 'desc' }, { jti: 'asc' }],
      take: opts.limit,
      ...(opts.cursor ? { cursor: { space_jti: { space, jti: opts.cursor } }, skip: 1 } : {}),
    })
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
   * Revokes the live credentials of a space matching `where` (a user, all users but one, an app —
   * `clientId: null`: issued without an attestation — or jtis; `{}`: all). Refused here at once;
   * the relay tells the repo hosts of the writers (`opts.writers` once the writer set is gone).
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
      await tx.revocationNotice.create({
        data: {
          id: randomUUID(),
          space: config.uri,
          credentials: JSON.stringify(rows.map((r) => r.jti)),
          writers: opts.writers ? JSON.stringify(opts.writers) : null,
          nextAttemptAt: now,
          createdAt: now,
        },
      })
      return rows
    })
    if (revoked.length > 0) this.deps.onQueued?.()
    return revoked.length
  }
}

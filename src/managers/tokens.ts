import { randomBytes } from 'node:crypto'
import { newRowId, secretHash } from '../crypto/encoding.js'
import { SYSTEM_ACTOR, type Actor, type AuditLog } from '../audit/audit-log.js'
import type { Clock } from '../clock.js'
import type { Db } from '../db/client.js'
import { atLeast, type ManagerRole } from '../authorities/managers.js'

/** What a token shows of itself: never its secret, which exists only in the answer to create. */
export interface TokenView {
  id: string
  authority: string
  name: string
  role: ManagerRole
  space: string | null
  createdBy: string
  /** The token that created this one, if a token did. */
  parentId: string | null
  createdAt: Date
  expiresAt: Date | null
  revokedAt: Date | null
  lastUsedAt: Date | null
}

/** A token refused at creation: the message says why. */
export class TokenError extends Error {
  override name = 'TokenError'
}

export const TOKEN_PREFIX = 'gh_'
/** A token's last use is written at most this often. */
const TOUCH_EVERY_MS = 60_000

type Row = NonNullable<Awaited<ReturnType<Db['prisma']['apiToken']['findUnique']>>>
const view = ({ hash: _hash, authorityDid, role, ...rest }: Row): TokenView => ({
  ...rest,
  authority: authorityDid,
  role: role as ManagerRole,
})

/**
 * API tokens for managers' scripts: `gh_` and 32 random bytes, stored as a SHA-256 hash. A token acts
 * on one authority (and optionally one space) with its own role, never above its creator's role at
 * the time of use: a creator who loses their role takes their tokens' power with them.
 */
export class ApiTokenService {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly audit: AuditLog,
  ) {}

  /** Creates a token, recorded in the audit log as `by` (a refusal too). */
  async create(
    input: {
      authority: string
      createdBy: string
      creatorRole: ManagerRole
      name: string
      role: ManagerRole
      space?: string
      expiresAt?: Date
      /** The token making this one: the new one expires no later, and goes when it is revoked. */
      parent?: TokenView
    },
    by: Actor = SYSTEM_ACTOR,
  ): Promise<{ token: string; view: TokenView }> {
    const entry = { authority: input.authority, actor: by, action: 'token.create' }
    const now = this.clock.now()
    let expiresAt: Date | undefined
    try {
      expiresAt = this.checkCreate(input, now)
    } catch (err) {
      const after = { name: input.name, role: input.role, createdBy: input.createdBy }
      await this.audit.recordRefusal({ ...entry, after, reason: (err as Error).message })
      throw err
    }
    const token = TOKEN_PREFIX + randomBytes(32).toString('base64url')
    const row = await this.db.transact(async (tx) => {
      const row = await tx.apiToken.create({
        data: {
          id: newRowId(),
          authorityDid: input.authority,
          createdBy: input.createdBy,
          name: input.name,
          role: input.role,
          space: input.space ?? null,
          hash: secretHash(token),
          parentId: input.parent?.id ?? null,
          createdAt: now,
          expiresAt: expiresAt ?? null,
        },
      })
      // Never the secret or its hash: the log is read by every admin.
      const { hash: _hash, lastUsedAt: _used, revokedAt: _revoked, ...shown } = row
      await this.audit.append(tx, { ...entry, space: row.space, subject: row.id, after: shown })
      return row
    })
    return { token, view: view(row) }
  }

  /** The expiry a new token gets; TokenError when the creator may not make it. */
  private checkCreate(
    input: { creatorRole: ManagerRole; role: ManagerRole; expiresAt?: Date; parent?: TokenView },
    now: Date,
  ): Date | undefined {
    if (!atLeast(input.creatorRole, input.role))
      throw new TokenError(
        `a ${input.creatorRole} may not create a token with the ${input.role} role`,
      )
    const ceiling = input.parent?.expiresAt ?? undefined
    if (input.expiresAt && ceiling && input.expiresAt > ceiling)
      throw new TokenError(
        `expiresAt may not be later than the creating token's (${ceiling.toISOString()})`,
      )
    const expiresAt = input.expiresAt ?? ceiling
    if (expiresAt && expiresAt <= now) throw new TokenError('expiresAt must be in the future')
    return expiresAt
  }

  /** The live token `secret` is, or undefined (unknown, expired or revoked). */
  async resolve(secret: string): Promise<TokenView | undefined> {
    if (!secret.startsWith(TOKEN_PREFIX) || secret.length > 100) return undefined
    const row = await this.db.prisma.apiToken.findUnique({ where: { hash: secretHash(secret) } })
    const now = this.clock.now()
    if (!row || row.revokedAt || (row.expiresAt && row.expiresAt <= now)) return undefined
    if (!row.lastUsedAt || now.getTime() - row.lastUsedAt.getTime() >= TOUCH_EVERY_MS)
      await this.db.prisma.apiToken.update({ where: { id: row.id }, data: { lastUsedAt: now } })
    return view(row)
  }

  /** The authority's tokens, newest first, `limit` after `cursor` (a token id). */
  async list(authority: string, limit: number, cursor?: string): Promise<TokenView[]> {
    const rows = await this.db.prisma.apiToken.findMany({
      where: { authorityDid: authority },
      orderBy: [{ createdAt: 'desc' }, { id: 'asc' }],
      take: limit,
      ...(cursor ? { cursor: { id: cursor }, skip: 1 } : {}),
    })
    return rows.map(view)
  }

  async get(authority: string, id: string): Promise<TokenView | undefined> {
    const row = await this.db.prisma.apiToken.findUnique({ where: { id } })
    return row && row.authorityDid === authority ? view(row) : undefined
  }

  /**
   * Revokes a token of `authority` and every token it made, theirs too (one transaction, with its
   * audit entry naming every token revoked); false when there is none by that id. Revoking twice
   * is fine.
   */
  async revoke(authority: string, id: string, by: Actor = SYSTEM_ACTOR): Promise<boolean> {
    if (!(await this.get(authority, id))) return false
    const now = this.clock.now()
    await this.db.transact(async (tx) => {
      const revoked: string[] = []
      for (let ids = [id]; ids.length > 0;) {
        const live = await tx.apiToken.findMany({
          where: { id: { in: ids }, authorityDid: authority, revokedAt: null },
          select: { id: true },
        })
        revoked.push(...live.map((t) => t.id))
        await tx.apiToken.updateMany({
          where: { id: { in: ids }, authorityDid: authority, revokedAt: null },
          data: { revokedAt: now },
        })
        const children = await tx.apiToken.findMany({
          where: { parentId: { in: ids }, authorityDid: authority, revokedAt: null },
          select: { id: true },
        })
        ids = children.map((c) => c.id)
      }
      await this.audit.append(tx, {
        authority,
        actor: by,
        action: 'token.revoke',
        subject: id,
        after: { revoked },
      })
    })
    return true
  }
}

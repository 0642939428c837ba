import { randomUUID } from 'node:crypto'
import { SYSTEM_ACTOR, type Actor, type AuditLog } from '../audit/audit-log.js'
import type { AuthorityService } from '../authorities/authority-service.js'
import type { KeyBinding } from '../auth/output.js'
import type { Clock } from '../clock.js'
import type { Db, Tx } from '../db/client.js'
import { forEachChunk, type HotQueries, type SqlValue } from '../db/hot-sql.js'
import { createSpaceToken, randomJti } from '../crypto/space-token.js'
import type { SpaceConfig } from '../policy/types.js'

export interface CredentialDeps {
  db: Db
  authorities: AuthorityService
  clock: Clock
  audit: AuditLog
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
    const [row] = await this.deps.db.hot.query<{ user_did: string }>(
      'SELECT user_did FROM issued_credential WHERE space = ? AND jti = ?',
      [space, jti],
    )
    return row?.user_did
  }

  /** The space's issued credentials, newest first, `limit` after `cursor` (a jti); optionally one user's. */
  async list(space: string, opts: { limit: number; cursor?: string; user?: string }) {
    const q = this.deps.db.hot
    const where = ['space = ?']
    const args: SqlValue[] = [space]
    if (opts.user) {
      where.push('user_did = ?')
      args.push(opts.user)
    }
    if (opts.cursor) {
      const [at] = await q.query<{ issuedAt: Date }>(
        `SELECT issued_at AS "issuedAt" FROM issued_credential WHERE space = ? AND jti = ?`,
        [space, opts.cursor],
      )
      if (!at) return []
      where.push('(issued_at < ? OR (issued_at = ? AND jti > ?))')
      args.push(at.issuedAt, at.issuedAt, opts.cursor)
    }
    return q.query<IssuedCredential>(
      `SELECT ${ISSUED} FROM issued_credential WHERE ${where.join(' AND ')}
       ORDER BY issued_at DESC, jti LIMIT ?`,
      [...args, opts.limit],
    )
  }

  /** The users holding live (unexpired, unrevoked) credentials for a space. */
  async liveHolders(space: string): Promise<string[]> {
    const rows = await this.deps.db.hot.query<{ user_did: string }>(
      `SELECT DISTINCT user_did FROM issued_credential
       WHERE space = ? AND revoked_at IS NULL AND expires_at > ?`,
      [space, this.deps.clock.now()],
    )
    return rows.map((r) => r.user_did)
  }

  /**
   * Revokes the live credentials of a space matching `where` (a user, all users but one, an app —
   * `clientId: null`: issued without an attestation — or jtis; `{}`: all). Refused here at once;
   * the relay tells the repo hosts of the writers (`opts.writers` once the writer set is gone).
   * Recorded in the audit log as `opts.by` in the same transaction when anything was revoked, or
   * always when a manager `asked` for it.
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
    opts: { writers?: string[]; by?: Actor; asked?: boolean } = {},
  ): Promise<number> {
    const now = this.deps.clock.now()
    const [conditions, args] = revocable(where)
    const revoked = await this.deps.db.transact(async (tx) => {
      const q = this.deps.db.in(tx)
      const rows = await q.query<{ jti: string; expiresAt: Date }>(
        `SELECT jti, expires_at AS "expiresAt" FROM issued_credential
         WHERE space = ? AND revoked_at IS NULL AND expires_at > ?${conditions}`,
        [config.uri, now, ...args],
      )
      if (rows.length > 0) await this.markRevoked(tx, config.uri, rows, now, opts.writers)
      // Last in the transaction: the audit lock is held only while it commits.
      if (rows.length > 0 || opts.asked)
        await this.deps.audit.append(tx, {
          authority: config.authority,
          actor: opts.by ?? SYSTEM_ACTOR,
          action: 'credentials.revoke',
          space: config.uri,
          after: { where, revoked: rows.length },
        })
      return rows
    })
    if (revoked.length > 0) this.deps.onQueued?.()
    return revoked.length
  }

  /** Marks `rows` revoked, refuses them from now on, and queues the notice to their repo hosts. */
  private async markRevoked(
    tx: Tx,
    space: string,
    rows: { jti: string; expiresAt: Date }[],
    now: Date,
    writers: string[] | undefined,
  ): Promise<void> {
    await forEachChunk(
      this.deps.db.in(tx),
      'UPDATE issued_credential SET revoked_at = ? WHERE space = ? AND jti IN (*)',
      [now, space],
      rows.map((r) => r.jti),
      'execute',
    )
    for (const r of rows) {
      await tx.revokedCredential.upsert({
        where: { space_jti: { space, jti: r.jti } },
        create: { space, jti: r.jti, expiresAt: r.expiresAt, createdAt: now },
        update: { expiresAt: r.expiresAt },
      })
    }
    await tx.revocationNotice.create({
      data: {
        id: randomUUID(),
        space,
        credentials: JSON.stringify(rows.map((r) => r.jti)),
        writers: writers ? JSON.stringify(writers) : null,
        nextAttemptAt: now,
        createdAt: now,
      },
    })
  }
}

/** A manager's revocation request (REST and XRPC take the same fields) as `revoke`'s filter. */
export function revocationFilter(ask: {
  user?: string
  clientId?: string
  credentials?: string[]
}): Parameters<CredentialService['revoke']>[1] {
  return {
    ...(ask.user !== undefined ? { userDid: ask.user } : {}),
    ...(ask.clientId !== undefined ? { clientId: ask.clientId } : {}),
    ...(ask.credentials !== undefined ? { jtis: ask.credentials } : {}),
  }
}

/** An issued credential as listed (REST). */
export interface IssuedCredential {
  jti: string
  userDid: string
  clientId: string | null
  issuedAt: Date
  expiresAt: Date
  revokedAt: Date | null
}

const ISSUED = `jti, user_did AS "userDid", client_id AS "clientId", issued_at AS "issuedAt",
  expires_at AS "expiresAt", revoked_at AS "revokedAt"`

/** What to revoke, as SQL after `WHERE space = ? AND … live`: lists are bounded by the callers. */
function revocable(where: Parameters<CredentialService['revoke']>[1]): [string, SqlValue[]] {
  const parts: string[] = []
  const args: SqlValue[] = []
  const add = (sql: string, ...values: SqlValue[]) => parts.push(sql) && args.push(...values)
  const marks = (values: string[]) => values.map(() => '?').join(', ')
  const oneOf = (column: string, values: string[]) =>
    values.length ? add(`${column} IN (${marks(values)})`, ...values) : add('1 = 0')
  if (where.userDid !== undefined) add('user_did = ?', where.userDid)
  if (where.userDidIn !== undefined) oneOf('user_did', where.userDidIn)
  if (where.userDidNot !== undefined) add('user_did <> ?', where.userDidNot)
  if (where.clientId === null) add('client_id IS NULL')
  else if (where.clientId !== undefined) add('client_id = ?', where.clientId)
  if (where.clientIdIn !== undefined) oneOf('client_id', where.clientIdIn)
  const notIn = where.clientIdNotIn ?? []
  if (notIn.length) add(`(client_id IS NULL OR client_id NOT IN (${marks(notIn)}))`, ...notIn)
  if (where.jtis !== undefined) oneOf('jti', where.jtis)
  return [parts.map((p) => ` AND ${p}`).join(''), args]
}

/** Deletes credentials that expired before `before`, oldest first, up to `limit`: the janitor's. */
export async function pruneCredentials(q: HotQueries, before: Date, limit: number) {
  const [last] = await q.query<{ expiresAt: Date }>(
    `SELECT expires_at AS "expiresAt" FROM issued_credential WHERE expires_at < ?
     ORDER BY expires_at LIMIT 1 OFFSET ?`,
    [before, limit - 1],
  )
  const upTo = last?.expiresAt ?? before
  const deleted = await q.execute(
    `DELETE FROM issued_credential WHERE expires_at ${last ? '<=' : '<'} ?`,
    [upTo],
  )
  return [deleted, last !== undefined] as [number, boolean]
}

import { SYSTEM_ACTOR, type Actor, type AuditLog } from '../audit/audit-log.js'
import type { Clock } from '../clock.js'
import type { Db } from '../db/client.js'
import type { HotQueries } from '../db/hot-sql.js'

/** Roles, most powerful first. */
export const MANAGER_ROLES = ['owner', 'admin', 'moderator'] as const
export type ManagerRole = (typeof MANAGER_ROLES)[number]

/**
 * What a manager may do, by role: the one table every check (XRPC, REST, CLI tokens) consults.
 * `read` is seeing the authority, its spaces and member lists; `authority` is its keys, services,
 * activation and transfer.
 */
export const CAPABILITIES = {
  read: ['owner', 'admin', 'moderator'],
  membership: ['owner', 'admin', 'moderator'],
  credentials: ['owner', 'admin', 'moderator'],
  notify: ['owner', 'admin', 'moderator'],
  invites: ['owner', 'admin', 'moderator'],
  'join-requests': ['owner', 'admin', 'moderator'],
  tokens: ['owner', 'admin', 'moderator'],
  'bulk-membership': ['owner', 'admin'],
  'space-config': ['owner', 'admin'],
  roles: ['owner', 'admin'],
  audit: ['owner', 'admin'],
  authority: ['owner'],
} as const satisfies Record<string, readonly ManagerRole[]>
export type Capability = keyof typeof CAPABILITIES

export function can(role: ManagerRole | undefined, capability: Capability): boolean {
  return role !== undefined && (CAPABILITIES[capability] as readonly string[]).includes(role)
}

/** The lower of two roles. */
export function weaker(a: ManagerRole, b: ManagerRole): ManagerRole {
  return MANAGER_ROLES.indexOf(a) > MANAGER_ROLES.indexOf(b) ? a : b
}

/** `role` is `other` or above it. */
export function atLeast(role: ManagerRole, other: ManagerRole): boolean {
  return MANAGER_ROLES.indexOf(role) <= MANAGER_ROLES.indexOf(other)
}

/** A role change refused: the message says why (NotSpaceOwner on XRPC, 403 on REST). */
export class RoleChangeError extends Error {
  override name = 'RoleChangeError'
}

/**
 * Whether `actor` may move `target` from `from` (undefined: not a manager) to `to` (undefined:
 * removed): only with the `roles` capability, and only owners touch owners. The last-owner rule
 * needs the database and lives in ManagerService.change.
 */
export function roleChangeRefusal(
  actor: ManagerRole | undefined,
  from: ManagerRole | undefined,
  to: ManagerRole | undefined,
): string | undefined {
  if (!can(actor, 'roles')) return 'managing roles needs the owner or admin role'
  if (actor !== 'owner' && (from === 'owner' || to === 'owner'))
    return 'only an owner may grant, change or remove the owner role'
  return undefined
}

/** The managers of each authority: DIDs whose service-auth calls may change its spaces. */
export class ManagerService {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly audit: AuditLog,
  ) {}

  /** Every management call asks: one primary-key lookup, outside the query compiler. */
  roleOf(authorityDid: string, did: string): Promise<ManagerRole | undefined> {
    return roleIn(this.db.hot, authorityDid, did)
  }

  /**
   * Gives `did` the role `to`, or removes it (`to` undefined), as `actor` (a manager's role, or
   * `operator` for the CLI, which any role change may come from), recorded in the audit log as `by`
   * in the same transaction. Refused with RoleChangeError (and the refusal recorded) when the actor
   * may not, or when it would leave the authority without an owner.
   */
  async change(
    authorityDid: string,
    did: string,
    to: ManagerRole | undefined,
    actor: ManagerRole | 'operator',
    by: Actor = SYSTEM_ACTOR,
  ): Promise<void> {
    const entry = { authority: authorityDid, actor: by, action: 'role.change', subject: did }
    try {
      await this.db.transact(async (tx) => {
        const q = this.db.in(tx)
        // Under the authority's lock on PostgreSQL, so two demotions cannot both pass the count.
        if (this.db.kind === 'postgres')
          await q.execute('SELECT pg_advisory_xact_lock(hashtext(?))', [`managers:${authorityDid}`])
        const from = await roleIn(q, authorityDid, did)
        const refusal = actor === 'operator' ? undefined : roleChangeRefusal(actor, from, to)
        if (refusal) throw new RoleChangeError(refusal)
        if (from === 'owner' && to !== 'owner') await assertNotLastOwner(q, authorityDid, did)
        if (to === undefined)
          await q.execute('DELETE FROM authority_manager WHERE authority_did = ? AND did = ?', [
            authorityDid,
            did,
          ])
        else await setRole(q, authorityDid, did, to, this.clock.now())
        await this.audit.append(tx, { ...entry, before: roleJson(from), after: roleJson(to) })
      })
    } catch (err) {
      if (err instanceof RoleChangeError)
        await this.audit.recordRefusal({ ...entry, after: roleJson(to), reason: err.message })
      throw err
    }
  }

  /** The authorities `did` manages, with its role in each, in DID order after `cursor`. */
  authoritiesOf(
    did: string,
    limit = 1000,
    cursor?: string,
  ): Promise<{ authority: string; role: ManagerRole }[]> {
    return this.db.hot.query(
      `SELECT authority_did AS authority, role FROM authority_manager
       WHERE did = ? AND authority_did > ? ORDER BY authority_did LIMIT ?`,
      [did, cursor ?? '', limit],
    )
  }

  /** The authority's managers in DID order, `limit` after `cursor` (a DID). */
  list(
    authorityDid: string,
    limit = 1000,
    cursor?: string,
  ): Promise<{ did: string; role: string; createdAt: Date }[]> {
    return this.db.hot.query(
      `SELECT did, role, created_at AS "createdAt" FROM authority_manager
       WHERE authority_did = ? AND did > ? ORDER BY did LIMIT ?`,
      [authorityDid, cursor ?? '', limit],
    )
  }
}

const roleJson = (role: ManagerRole | undefined) => (role ? { role } : null)

async function assertNotLastOwner(q: HotQueries, authorityDid: string, did: string) {
  const [owners] = await q.query<{ n: number | bigint }>(
    `SELECT COUNT(*) AS n FROM authority_manager WHERE authority_did = ? AND role = 'owner'`,
    [authorityDid],
  )
  if (Number(owners?.n ?? 0) <= 1)
    throw new RoleChangeError(`${did} is the last owner of ${authorityDid}`)
}

/** `did`'s role for the authority, if any. */
async function roleIn(q: HotQueries, authorityDid: string, did: string) {
  const [row] = await q.query<{ role: ManagerRole }>(
    'SELECT role FROM authority_manager WHERE authority_did = ? AND did = ?',
    [authorityDid, did],
  )
  return row?.role
}

/** Gives `did` the role, a manager from now if it was none. */
export async function setRole(
  q: HotQueries,
  authorityDid: string,
  did: string,
  role: ManagerRole,
  now: Date,
): Promise<void> {
  await q.execute(
    `INSERT INTO authority_manager (authority_did, did, role, created_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (authority_did, did) DO UPDATE SET role = excluded.role`,
    [authorityDid, did, role, now],
  )
}

/** Removes every manager of an authority (it is discarded). */
export function dropManagers(q: HotQueries, authorityDid: string) {
  return q.execute('DELETE FROM authority_manager WHERE authority_did = ?', [authorityDid])
}

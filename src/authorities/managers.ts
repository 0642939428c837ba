import type { Clock } from '../clock.js'
import type { Db } from '../db/client.js'

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
  ) {}

  async roleOf(authorityDid: string, did: string): Promise<ManagerRole | undefined> {
    // Every management call asks: one primary-key lookup, outside the query compiler.
    const [row] = await this.db.hot.query<{ role: string }>(
      'SELECT role FROM authority_manager WHERE authority_did = ? AND did = ?',
      [authorityDid, did],
    )
    return row?.role as ManagerRole | undefined
  }

  /**
   * Gives `did` the role `to`, or removes it (`to` undefined), as `actor` (a manager's role, or
   * `operator` for the CLI, which any role change may come from). Refused with RoleChangeError when
   * the actor may not, or when it would leave the authority without an owner.
   */
  async change(
    authorityDid: string,
    did: string,
    to: ManagerRole | undefined,
    actor: ManagerRole | 'operator',
  ): Promise<void> {
    await this.db.transact(async (tx) => {
      // Under the authority's lock on PostgreSQL, so two demotions cannot both pass the count.
      if (this.db.kind === 'postgres')
        await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${`managers:${authorityDid}`}))`
      const key = { authorityDid_did: { authorityDid, did } }
      const from = (await tx.authorityManager.findUnique({ where: key }))?.role as
        ManagerRole | undefined
      const refusal = actor === 'operator' ? undefined : roleChangeRefusal(actor, from, to)
      if (refusal) throw new RoleChangeError(refusal)
      if (from === 'owner' && to !== 'owner') {
        const owners = await tx.authorityManager.count({ where: { authorityDid, role: 'owner' } })
        if (owners <= 1) throw new RoleChangeError(`${did} is the last owner of ${authorityDid}`)
      }
      if (to === undefined) await tx.authorityManager.deleteMany({ where: { authorityDid, did } })
      else
        await tx.authorityManager.upsert({
          where: key,
          create: { authorityDid, did, role: to, createdAt: this.clock.now() },
          update: { role: to },
        })
    })
  }

  /** The authorities `did` manages, with its role in each, in DID order after `cursor`. */
  async authoritiesOf(
    did: string,
    limit = 1000,
    cursor?: string,
  ): Promise<{ authority: string; role: ManagerRole }[]> {
    const rows = await this.db.prisma.authorityManager.findMany({
      where: { did, ...(cursor ? { authorityDid: { gt: cursor } } : {}) },
      orderBy: { authorityDid: 'asc' },
      take: limit,
    })
    return rows.map((r) => ({ authority: r.authorityDid, role: r.role as ManagerRole }))
  }

  /** The authority's managers in DID order, `limit` after `cursor` (a DID). */
  async list(
    authorityDid: string,
    limit = 1000,
    cursor?: string,
  ): Promise<{ did: string; role: string; createdAt: Date }[]> {
    return this.db.prisma.authorityManager.findMany({
      where: { authorityDid, ...(cursor ? { did: { gt: cursor } } : {}) },
      take: limit,
      select: { did: true, role: true, createdAt: true },
      orderBy: { did: 'asc' },
    })
  }
}

import type { Clock } from '../clock.js'
import type { Db } from '../db/client.js'

/** Roles, most powerful first. Owners can do everything; moderators manage members and credentials. */
export const MANAGER_ROLES = ['owner', 'admin', 'moderator'] as const
export type ManagerRole = (typeof MANAGER_ROLES)[number]

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

  async set(authorityDid: string, did: string, role: ManagerRole): Promise<void> {
    await this.db.prisma.authorityManager.upsert({
      where: { authorityDid_did: { authorityDid, did } },
      create: { authorityDid, did, role, createdAt: this.clock.now() },
      update: { role },
    })
  }

  async list(authorityDid: string): Promise<{ did: string; role: string; createdAt: Date }[]> {
    return this.db.prisma.authorityManager.findMany({
      where: { authorityDid },
      select: { did: true, role: true, createdAt: true },
      orderBy: { did: 'asc' },
    })
  }

  async remove(authorityDid: string, did: string): Promise<void> {
    await this.db.prisma.authorityManager.deleteMany({ where: { authorityDid, did } })
  }
}

export function hasRole(role: ManagerRole | undefined, needed: ManagerRole): boolean {
  return role !== undefined && MANAGER_ROLES.indexOf(role) <= MANAGER_ROLES.indexOf(needed)
}

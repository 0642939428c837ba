import type { Clock } from '../clock.js'
import type { Db } from '../db/client.js'

/**
 * Space credentials refused before their expiry, by `(space, jti)`. Every credential-authenticated
 * request checks this (contract §3.3); the rows go once the credential would have expired anyway.
 */
export class RevocationStore {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  async isRevoked(space: string, jti: string): Promise<boolean> {
    const row = await this.db.prisma.revokedCredential.findUnique({
      where: { space_jti: { space, jti } },
      select: { jti: true },
    })
    return row !== null
  }

  /** Refuses `(space, jti)` until `expiresAt`. Idempotent. */
  async revoke(space: string, jti: string, expiresAt: Date): Promise<void> {
    await this.db.prisma.revokedCredential.upsert({
      where: { space_jti: { space, jti } },
      create: { space, jti, expiresAt, createdAt: this.clock.now() },
      update: { expiresAt },
    })
  }

  async prune(): Promise<number> {
    const { count } = await this.db.prisma.revokedCredential.deleteMany({
      where: { expiresAt: { lt: this.clock.now() } },
    })
    return count
  }
}

import type { Db } from '../db/client.js'

/**
 * Space credentials refused before their expiry, by `(space, jti)`. Every credential-authenticated
 * request checks this (contract §3.3); CredentialService.revoke writes them, the janitor prunes them.
 */
export class RevocationStore {
  constructor(private readonly db: Db) {}

  async isRevoked(space: string, jti: string): Promise<boolean> {
    const row = await this.db.prisma.revokedCredential.findUnique({
      where: { space_jti: { space, jti } },
      select: { jti: true },
    })
    return row !== null
  }
}

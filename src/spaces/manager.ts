import type { SpaceConfig, SpacePolicy } from '../policy/types.js'
import type { CredentialService } from './credentials.js'
import type { SpaceService } from './space-service.js'

/**
 * Changes that take read access away also revoke the credentials it was granted by: removing a
 * member or clearing its read flag (member-list spaces), and narrowing which apps may be used.
 * Revocation covers credentials still alive; new requests are refused by the policy itself.
 */
export class SpaceManager {
  constructor(
    readonly spaces: SpaceService,
    readonly credentials: CredentialService,
  ) {}

  async putMember(
    config: SpaceConfig,
    did: string,
    flags: { read: boolean; write: boolean },
  ): Promise<void> {
    const before = await this.spaces.putMember(config.uri, did, flags)
    if (config.readPolicy.kind === 'member-list' && before?.read && !flags.read) {
      await this.credentials.revoke(config, { userDid: did })
    }
  }

  async removeMember(config: SpaceConfig, did: string): Promise<void> {
    const removed = await this.spaces.removeMember(config.uri, did)
    if (removed && config.readPolicy.kind === 'member-list')
      await this.credentials.revoke(config, { userDid: did })
  }

  async updatePolicy(uri: string, change: Partial<SpacePolicy>): Promise<SpaceConfig> {
    const { after } = await this.spaces.updatePolicy(uri, change)
    if (change.appAccess) {
      const app = after.appAccess
      if (app.kind === 'allowList')
        await this.credentials.revoke(after, { clientIdNotIn: app.allowed })
      if (app.kind === 'denyList') {
        await this.credentials.revoke(after, { clientId: null })
        if (app.denied.length) await this.credentials.revoke(after, { clientIdIn: app.denied })
      }
    }
    return after
  }
}

import { SYSTEM_ACTOR, type Actor } from '../audit/audit-log.js'
import type { Tx } from '../db/client.js'
import type { Flags } from '../members/member-list.js'
import { spaceAuthority } from '../lexicon/formats.js'
import type { SpaceConfig, SpacePolicy, UserPolicy } from '../policy/types.js'
import type { CredentialService } from './credentials.js'
import type { ImportEntry, SpaceService } from './space-service.js'

/** Lines of a bulk import committed (and revoked for) together. */
export const IMPORT_BATCH = 1000

/**
 * Changes that take read access away revoke the live credentials it granted, here and at repo
 * hosts: removing a member or clearing its read flag (member-list spaces, bulk imports included),
 * narrowing the read or app perimeter, deleting the space. The authority always passes.
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
    by: Actor = SYSTEM_ACTOR,
  ): Promise<void> {
    const before = await this.spaces.putMember(config.uri, did, flags, by)
    if (config.readPolicy.kind === 'member-list' && before?.read && !flags.read) {
      await this.credentials.revoke(config, { userDid: did }, { by })
    }
  }

  /**
   * Inside the caller's transaction (an accepted invite, an approved join request): raises the
   * member's flags to at least `flags`, never lowering one, so nothing is ever revoked. True when
   * the member list changed.
   */
  grantMember(tx: Tx, config: SpaceConfig, did: string, flags: Flags): Promise<boolean> {
    return this.spaces.raiseMember(tx, config.uri, did, flags)
  }

  async removeMember(config: SpaceConfig, did: string, by: Actor = SYSTEM_ACTOR): Promise<void> {
    const removed = await this.spaces.removeMember(config.uri, did, by)
    if (removed && config.readPolicy.kind === 'member-list')
      await this.credentials.revoke(config, { userDid: did }, { by })
  }

  /**
   * A bulk import (`flags` undefined: remove), in batches of IMPORT_BATCH entries where the last one
   * for a DID wins (SpaceService.importMembers commits each in slices). Members who lost read lose
   * their live credentials. An error from `entries` (a bad line) stops it; what was committed
   * before stays. Each slice's member changes (counted; the oplog has each) and its revocations
   * are recorded as `by`.
   */
  async importMembers(
    config: SpaceConfig,
    entries: AsyncIterable<ImportEntry>,
    by: Actor = SYSTEM_ACTOR,
  ) {
    const count = { received: 0, changed: 0, batches: 0 }
    let batch = new Map<string, Flags | undefined>()
    const flush = async () => {
      const pending = [...batch].map(([did, flags]) => ({ did, flags }))
      batch = new Map()
      if (pending.length === 0) return
      const done = await this.spaces.importMembers(config.uri, pending, by)
      count.changed += done.length
      count.batches++
      const lostRead = done.filter((c) => c.before?.read && !c.after?.read).map((c) => c.did)
      if (lostRead.length && config.readPolicy.kind === 'member-list')
        await this.credentials.revoke(config, { userDidIn: lostRead }, { by })
    }
    for await (const { did, flags } of entries) {
      batch.delete(did)
      batch.set(did, flags)
      count.received++
      if (count.received % IMPORT_BATCH === 0) await flush()
    }
    await flush()
    return { ...count, unchanged: count.received - count.changed }
  }

  /** Replaces the given parts of the policy, then revokes what the new one no longer admits. */
  async updatePolicy(
    uri: string,
    change: Partial<SpacePolicy>,
    by: Actor = SYSTEM_ACTOR,
  ): Promise<SpaceConfig> {
    const { before, after } = await this.spaces.updatePolicy(uri, change, by)
    if (change.appAccess) await this.revokeOutsideApps(after, by)
    if (!sameUserPolicy(before.readPolicy, after.readPolicy))
      await this.revokeOutsideReaders(after, by)
    return after
  }

  /**
   * Deletes a space and revokes its live credentials: re-created with the same key it is a new
   * space whose perimeter they never passed. False when already deleted.
   */
  async deleteSpace(uri: string, by: Actor = SYSTEM_ACTOR): Promise<boolean> {
    const deleted = await this.spaces.delete(uri, by)
    if (!deleted) return false
    await this.credentials.revoke(
      { uri, authority: spaceAuthority(uri) },
      {},
      { writers: deleted.writers, by },
    )
    return true
  }

  /** The app perimeter, from the config alone: credentials of apps it refuses. */
  private async revokeOutsideApps(config: SpaceConfig, by: Actor): Promise<void> {
    const app = config.appAccess
    if (app.kind === 'allowList')
      await this.credentials.revoke(config, { clientIdNotIn: app.allowed }, { by })
    if (app.kind === 'denyList') {
      await this.credentials.revoke(config, { clientId: null }, { by })
      if (app.denied.length)
        await this.credentials.revoke(config, { clientIdIn: app.denied }, { by })
    }
  }

  /** After the read policy changed: public admits all; a member list its readers; a managing app nobody until asked again. */
  private async revokeOutsideReaders(config: SpaceConfig, by: Actor): Promise<void> {
    const policy = config.readPolicy
    if (policy.kind === 'public') return
    if (policy.kind === 'managing-app') {
      await this.credentials.revoke(config, { userDidNot: config.authority }, { by })
      return
    }
    const holders = (await this.credentials.liveHolders(config.uri)).filter(
      (did) => did !== config.authority,
    )
    const readers = await this.spaces.members.among(config.uri, holders, 'read')
    const outside = holders.filter((did) => !readers.has(did))
    for (let i = 0; i < outside.length; i += 500)
      await this.credentials.revoke(config, { userDidIn: outside.slice(i, i + 500) }, { by })
  }
}

/** Whether two read (or write) policies admit the same users: same kind, and same managing app. */
function sameUserPolicy(a: UserPolicy, b: UserPolicy): boolean {
  if (a.kind !== b.kind) return false
  return a.kind !== 'managing-app' || a.managingApp === (b as typeof a).managingApp
}

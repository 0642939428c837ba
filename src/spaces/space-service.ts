import { setImmediate as turn } from 'node:timers/promises'
import { SYSTEM_ACTOR, type Actor, type AuditLog } from '../audit/audit-log.js'
import type { Clock } from '../clock.js'
import { MemberList, type Flags } from '../members/member-list.js'
import { dropWriters } from './events.js'
import type { Db, Tx } from '../db/client.js'
import type { HotQueries } from '../db/hot-sql.js'
import { UniqueViolationError } from '../db/errors.js'
import { formatSpaceRef, spaceAuthority } from '../lexicon/formats.js'
import { policyFromColumns, policyToColumns } from '../policy/codec.js'
import type { Access, RosterVisibility, SpaceConfig, SpacePolicy } from '../policy/types.js'
import {
  CREDENTIAL_MAX_TTL_SEC,
  CREDENTIAL_TTL_SEC,
  DPOP_CREDENTIAL_TTL_SEC,
} from '../crypto/space-token.js'

/** Spaces and their member lists; every multi-row write is one transaction. */

export type SpaceErrorName = 'SpaceNotFound' | 'SpaceDeleted' | 'SpaceAlreadyExists'

export class SpaceError extends Error {
  override name = 'SpaceError'
  constructor(
    readonly error: SpaceErrorName,
    message: string,
  ) {
    super(message)
  }
}

export interface CreateSpaceInput extends SpacePolicy {
  authority: string
  spaceType: string
  skey: string
  credentialTtlSec?: number
  dpopCredentialTtlSec?: number
}

/**
 * Members per import transaction, which holds the SQLite writer and the event loop: at 100 the
 * import-interference bench reads others' p99 at about 2x idle (4.5-8x at 250), the import no slower.
 */
export const IMPORT_SLICE = 100

export type ImportEntry = { did: string; flags: Flags | undefined }
export type MemberChange = { did: string; before: Flags | undefined; after: Flags | undefined }

type SpaceRow = Awaited<ReturnType<Db['prisma']['space']['findUnique']>> & object

type Lookup = { state: 'absent' } | { state: 'deleted' } | { state: 'active'; config: SpaceConfig }

export class SpaceService {
  /** Configs read in the last `configCacheMs`; our own writes drop the entry at once. */
  private readonly configs = new Map<string, { value: Lookup; expiresAtMs: number }>()

  readonly members: MemberList

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly audit: AuditLog,
    private readonly configCacheMs = 0,
  ) {
    this.members = new MemberList(db, clock)
  }

  private forget(uri: string): void {
    this.configs.delete(uri)
  }

  private async toConfig(
    row: SpaceRow,
    tx: Tx | Db['prisma'] = this.db.prisma,
  ): Promise<SpaceConfig> {
    const rules = await tx.spaceAppRule.findMany({
      where: { space: row.uri },
      select: { clientId: true },
      orderBy: { clientId: 'asc' },
    })
    return {
      uri: row.uri,
      authority: row.authorityDid,
      credentialTtlSec: row.credentialTtlSec,
      dpopCredentialTtlSec: Math.min(row.dpopCredentialTtlSec, row.credentialTtlSec),
      rosterVisibility: row.rosterVisibility as RosterVisibility,
      createdAt: row.createdAt,
      ...policyFromColumns(
        row,
        rules.map((r) => r.clientId),
      ),
    }
  }

  /** Creates a space, or re-creates a deleted one (fresh config, tombstone cleared); audited as `by`. */
  async create(input: CreateSpaceInput, by: Actor = SYSTEM_ACTOR): Promise<SpaceConfig> {
    const uri = formatSpaceRef({
      authority: input.authority,
      spaceType: input.spaceType,
      skey: input.skey,
    })
    const ttl = Math.min(input.credentialTtlSec ?? CREDENTIAL_TTL_SEC, CREDENTIAL_MAX_TTL_SEC)
    const dpopTtl = Math.min(input.dpopCredentialTtlSec ?? DPOP_CREDENTIAL_TTL_SEC, ttl)
    const { columns, clientIds } = policyToColumns(input)
    const now = this.clock.now()
    this.forget(uri)
    try {
      return await this.db.transact(async (tx) => {
        const existing = await tx.space.findUnique({ where: { uri } })
        if (existing && !existing.deletedAt)
          throw new SpaceError('SpaceAlreadyExists', 'Space already exists')
        const data = {
          ...columns,
          credentialTtlSec: ttl,
          dpopCredentialTtlSec: dpopTtl,
          updatedAt: now,
          deletedAt: null,
          // A space made again is a new one: nobody may ask to join until a manager says so.
          joinRequests: false,
        }
        const row = existing
          ? await tx.space.update({ where: { uri }, data: { ...data, createdAt: now } })
          : await tx.space.create({
              data: {
                uri,
                authorityDid: input.authority,
                spaceType: input.spaceType,
                skey: input.skey,
                createdAt: now,
                ...data,
              },
            })
        await replaceAppRules(tx, uri, clientIds)
        const config = await this.toConfig(row, tx)
        await this.record(tx, by, 'space.create', uri, { after: settingsOf(config) })
        return config
      })
    } catch (err) {
      if (err instanceof UniqueViolationError)
        throw new SpaceError('SpaceAlreadyExists', 'Space already exists')
      throw err
    }
  }

  /** The space's row state: undefined (never existed), deleted, or its active config. */
  async lookup(uri: string): Promise<Lookup> {
    const hit = this.configs.get(uri)
    if (hit && hit.expiresAtMs > this.clock.nowMs()) return hit.value
    const row = await this.db.prisma.space.findUnique({ where: { uri } })
    const value: Lookup = !row
      ? { state: 'absent' }
      : row.deletedAt
        ? { state: 'deleted' }
        : { state: 'active', config: await this.toConfig(row) }
    if (this.configCacheMs > 0) {
      this.configs.set(uri, { value, expiresAtMs: this.clock.nowMs() + this.configCacheMs })
      if (this.configs.size > 10_000) this.configs.delete(this.configs.keys().next().value!)
    }
    return value
  }

  /** Replaces the given parts of a space's policy. Returns the config before and after. */
  async updatePolicy(
    uri: string,
    change: Partial<SpacePolicy>,
    by: Actor = SYSTEM_ACTOR,
  ): Promise<{ before: SpaceConfig; after: SpaceConfig }> {
    this.forget(uri)
    return this.db.transact(async (tx) => {
      const row = await tx.space.findUnique({ where: { uri } })
      if (!row || row.deletedAt) throw new SpaceError('SpaceNotFound', 'Space not found')
      const before = await this.toConfig(row, tx)
      const next: SpacePolicy = {
        readPolicy: change.readPolicy ?? before.readPolicy,
        writePolicy: change.writePolicy ?? before.writePolicy,
        appAccess: change.appAccess ?? before.appAccess,
      }
      const { columns, clientIds } = policyToColumns(next)
      const updated = await tx.space.update({
        where: { uri },
        data: { ...columns, updatedAt: this.clock.now() },
      })
      if (change.appAccess) await replaceAppRules(tx, uri, clientIds)
      const after = await this.toConfig(updated, tx)
      await this.record(tx, by, 'space.update', uri, {
        before: settingsOf(before),
        after: settingsOf(after),
      })
      return { before, after }
    })
  }

  /** Adds a member or changes its flags. Returns the flags it had before (undefined: not a member). */
  async putMember(
    uri: string,
    did: string,
    flags: { read: boolean; write: boolean },
    by: Actor = SYSTEM_ACTOR,
  ): Promise<{ read: boolean; write: boolean } | undefined> {
    return this.db.transact(async (tx) => {
      await this.assertActive(tx, uri)
      const { before } = await this.members.put(this.db.in(tx), uri, did, flags)
      await this.record(tx, by, 'member.put', uri, { subject: did, before, after: flags })
      return before
    })
  }

  /**
   * Inside the caller's transaction: raises a member's flags to at least `flags` (adding it), never
   * lowering one. True when something changed (an op was written).
   */
  async raiseMember(tx: Tx, uri: string, did: string, flags: Flags): Promise<boolean> {
    await this.assertActive(tx, uri)
    return (await this.members.raise(this.db.in(tx), uri, did, flags)).changed
  }

  /** Removes a member (no-op when absent). True when a row was removed. */
  async removeMember(uri: string, did: string, by: Actor = SYSTEM_ACTOR): Promise<boolean> {
    return this.db.transact(async (tx) => {
      await this.assertActive(tx, uri)
      return this.removeMemberIn(tx, uri, did, by)
    })
  }

  /** removeMember inside the caller's transaction (a ban); its entry with it, when one went. */
  async removeMemberIn(tx: Tx, uri: string, did: string, by: Actor): Promise<boolean> {
    const { before, changed } = await this.members.remove(this.db.in(tx), uri, did)
    if (changed) await this.record(tx, by, 'member.remove', uri, { subject: did, before })
    return changed
  }

  /**
   * Deletes a space (contract §4.5), leaving a tombstone so getSpaceCredential answers SpaceDeleted.
   * Returns the writers dropped (their repo hosts must hear of the revocation SpaceManager makes),
   * or false when already deleted.
   */
  async delete(uri: string, by: Actor = SYSTEM_ACTOR): Promise<{ writers: string[] } | false> {
    this.forget(uri)
    return this.db.transact(async (tx) => {
      const row = await tx.space.findUnique({ where: { uri } })
      if (!row) throw new SpaceError('SpaceNotFound', 'Space not found')
      if (row.deletedAt) return false
      const before = settingsOf(await this.toConfig(row, tx))
      const now = this.clock.now()
      await tx.space.update({ where: { uri }, data: { deletedAt: now, updatedAt: now } })
      await this.members.clear(this.db.in(tx), uri)
      await tx.spaceAppRule.deleteMany({ where: { space: uri } })
      // Its ways in end with it: a space made again under the same name starts without them.
      await tx.invite.updateMany({
        where: { space: uri, revokedAt: null },
        data: { revokedAt: now },
      })
      await tx.joinRequest.updateMany({
        where: { space: uri, status: 'pending' },
        data: { status: 'denied', reason: 'space deleted', pendingDid: null, decidedAt: now },
      })
      await tx.joinRequestNotice.deleteMany({ where: { space: uri } })
      await tx.ban.deleteMany({ where: { space: uri } })
      const writers = await dropWriters(this.db.in(tx), uri)
      await this.record(tx, by, 'space.delete', uri, { before })
      return { writers }
    })
  }

  /** When an active space's current instance began, in whole seconds (as `iat`); from the cache. */
  async instanceSinceSec(uri: string): Promise<number | undefined> {
    const found = await this.lookup(uri)
    return found.state === 'active'
      ? Math.floor(found.config.createdAt.getTime() / 1000)
      : undefined
  }

  async setRosterVisibility(
    uri: string,
    visibility: RosterVisibility,
    by: Actor = SYSTEM_ACTOR,
  ): Promise<void> {
    this.forget(uri)
    await this.db.transact(async (tx) => {
      const row = await tx.space.findUnique({
        where: { uri },
        select: { rosterVisibility: true, deletedAt: true },
      })
      if (!row || row.deletedAt) throw new SpaceError('SpaceNotFound', 'Space not found')
      await tx.space.update({
        where: { uri },
        data: { rosterVisibility: visibility, updatedAt: this.clock.now() },
      })
      await this.record(tx, by, 'space.roster-visibility', uri, {
        before: { rosterVisibility: row.rosterVisibility },
        after: { rosterVisibility: visibility },
      })
    })
  }

  /**
   * A bulk import's entries (one per DID), in transactions of at most IMPORT_SLICE members, each
   * with its oplog entries, giving every other request a turn before each. Returns what changed.
   */
  async importMembers(
    uri: string,
    entries: ImportEntry[],
    by: Actor = SYSTEM_ACTOR,
  ): Promise<MemberChange[]> {
    const done: MemberChange[] = []
    for (let i = 0; i < entries.length; i += IMPORT_SLICE) {
      // Through the event loop, not just the microtask queue: requests that arrived meanwhile run
      // first, and their queries get the SQLite connection (handed out in order) before this one.
      await turn()
      const slice = entries.slice(i, i + IMPORT_SLICE)
      const changes = await this.db.hot.transaction(async (q) => {
        const changes = await this.members.applyBatch(q, uri, slice)
        // One entry per slice, in its transaction: the oplog holds each member's change.
        if (changes.length)
          await this.record(q, by, 'member.import', uri, { after: tally(changes) })
        return changes
      })
      done.push(...changes)
    }
    return done
  }

  /** Active spaces of `authority` in URI order after `cursor`, at most `limit`. */
  async page(authority: string, limit: number, cursor?: string): Promise<SpaceConfig[]> {
    const rows = await this.db.prisma.space.findMany({
      where: {
        authorityDid: authority,
        deletedAt: null,
        ...(cursor ? { uri: { gt: cursor } } : {}),
      },
      select: { uri: true },
      orderBy: { uri: 'asc' },
      take: limit,
    })
    const found = await Promise.all(rows.map((r) => this.lookup(r.uri)))
    return found.flatMap((f) => (f.state === 'active' ? [f.config] : []))
  }

  /** URIs of the active spaces, of one authority when given (operator listing). */
  async list(authority?: string): Promise<string[]> {
    const rows = await this.db.prisma.space.findMany({
      where: { deletedAt: null, ...(authority ? { authorityDid: authority } : {}) },
      select: { uri: true },
      orderBy: { uri: 'asc' },
    })
    return rows.map((r) => r.uri)
  }

  /** The audit entry of a change to space `uri`, in its transaction. */
  private record(
    tx: Tx | HotQueries,
    by: Actor,
    action: string,
    uri: string,
    what: { subject?: string; before?: unknown; after?: unknown },
  ) {
    return this.audit.append(tx, {
      authority: spaceAuthority(uri),
      actor: by,
      action,
      space: uri,
      ...what,
    })
  }

  private async assertActive(tx: Tx, uri: string): Promise<void> {
    const row = await tx.space.findUnique({ where: { uri }, select: { deletedAt: true } })
    if (!row || row.deletedAt) throw new SpaceError('SpaceNotFound', 'Space not found')
  }
}

/** What the audit log keeps of a space's settings (its policy and lifetimes). */
function settingsOf(c: SpaceConfig) {
  return {
    readPolicy: c.readPolicy,
    writePolicy: c.writePolicy,
    appAccess: c.appAccess,
    credentialTtlSec: c.credentialTtlSec,
    dpopCredentialTtlSec: c.dpopCredentialTtlSec,
    rosterVisibility: c.rosterVisibility,
  }
}

async function replaceAppRules(tx: Tx, uri: string, clientIds: string[]): Promise<void> {
  await tx.spaceAppRule.deleteMany({ where: { space: uri } })
  if (clientIds.length)
    await tx.spaceAppRule.createMany({
      data: clientIds.map((clientId) => ({ space: uri, clientId })),
    })
}

/** A slice of an import as its audit entry counts it. */
function tally(changes: MemberChange[]) {
  const count = (f: (c: MemberChange) => boolean) => changes.filter(f).length
  return {
    added: count((c) => !c.before),
    updated: count((c) => !!c.before && !!c.after),
    removed: count((c) => !c.after),
  }
}

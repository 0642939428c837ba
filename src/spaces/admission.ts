import { newRowId, newSecretCode, secretHash } from '../crypto/encoding.js'
import type { Actor, AuditLog } from '../audit/audit-log.js'
import type { Clock } from '../clock.js'
import { spaceAuthority } from '../lexicon/formats.js'
import type { Db, Tx } from '../db/client.js'
import { UniqueViolationError } from '../db/errors.js'
import { InvalidRequestError, XrpcError } from '../errors.js'
import type { Flags } from '../members/member-list.js'
import type { SpaceConfig } from '../policy/types.js'
import type { CredentialService } from './credentials.js'
import type { SpaceManager } from './manager.js'

/**
 * The ways into a space besides a manager adding a member: invites (a code, shown once, kept as
 * its SHA-256) and join requests that managers approve or deny; and bans, which keep a DID out of
 * both. Members are added and removed only through SpaceManager, so every change is in the member
 * oplog like any other.
 */

export type AdmissionErrorName =
  | 'InviteNotFound'
  | 'InviteExpired'
  | 'InviteRevoked'
  | 'InviteExhausted'
  | 'Banned'
  | 'JoinRequestsClosed'
  | 'JoinRequestNotFound'
  | 'AlreadyDecided'
  | 'AlreadyMember'
  | 'RateLimitExceeded'

/** A refusal with its contract name: 400, or 429 for the per-requester limit. */
export class AdmissionError extends XrpcError {
  constructor(
    readonly code: AdmissionErrorName,
    message: string,
  ) {
    super(code === 'RateLimitExceeded' ? 429 : 400, code, message)
  }
}

export interface InviteView {
  id: string
  space: string
  read: boolean
  write: boolean
  /** null: no limit. */
  maxUses: number | null
  uses: number
  expiresAt: Date
  createdBy: string
  createdAt: Date
  revokedAt: Date | null
  /** The latest USED_BY_SHOWN who accepted it, newest first. */
  usedBy: { did: string; at: Date }[]
}

export interface AcceptedInvite {
  space: string
  /** The invite's flags (the member may hold more). */
  read: boolean
  write: boolean
  /** False when the member list already had them (accepted before, or a member already). */
  changed: boolean
}

export interface JoinRequestView {
  id: string
  space: string
  did: string
  message: string | null
  status: 'pending' | 'approved' | 'denied'
  read: boolean
  write: boolean
  reason: string | null
  decidedBy: string | null
  createdAt: Date
  decidedAt: Date | null
}

export interface BanView {
  space: string
  did: string
  reason: string | null
  expiresAt: Date | null
  createdBy: string
  createdAt: Date
}

export interface AdmissionDeps {
  db: Db
  audit: AuditLog
  clock: Clock
  manager: SpaceManager
  credentials: CredentialService
  /** The space hosted here and active, or SpaceNotFound. */
  hosted: (uri: string) => Promise<SpaceConfig>
  /** Join requests one DID may make per hour, across spaces. */
  requestsPerHour: number
  /** A request was queued for a managing app: the relay should look now. */
  onForward?: () => void
}

/** How many of an invite's users a listing shows. */
export const USED_BY_SHOWN = 50
/** Pending requests one space may hold: strangers make them, so they are bounded here too. */
export const PENDING_PER_SPACE_MAX = 10_000
const HOUR_MS = 3_600_000
export const INVITE_DEFAULT_TTL_MS = 7 * 24 * HOUR_MS
export const INVITE_MAX_TTL_MS = 365 * 24 * HOUR_MS

type InviteRow = NonNullable<Awaited<ReturnType<Db['prisma']['invite']['findUnique']>>>
type RequestRow = NonNullable<Awaited<ReturnType<Db['prisma']['joinRequest']['findUnique']>>>

const requestView = ({ pendingDid: _p, status, ...rest }: RequestRow): JoinRequestView => ({
  ...rest,
  status: status as JoinRequestView['status'],
})

export class AdmissionService {
  constructor(private readonly deps: AdmissionDeps) {}

  private get db() {
    return this.deps.db
  }

  private now() {
    return this.deps.clock.now()
  }

  /** The audit entry of an admission step, in the step's transaction. */
  private record(
    tx: Tx,
    by: Actor,
    action: string,
    space: string,
    subject: string,
    change: { before?: unknown; after?: unknown } = {},
  ) {
    const authority = spaceAuthority(space)
    return this.deps.audit.append(tx, { authority, actor: by, action, space, subject, ...change })
  }

  // Invites

  /**
   * A new invite (by default for INVITE_DEFAULT_TTL_MS, at most INVITE_MAX_TTL_MS); its code is in
   * this answer only (the link is `/join/{code}`).
   */
  async createInvite(
    config: SpaceConfig,
    input: { write: boolean; maxUses: number | null; expiresAt?: Date },
    by: Actor,
  ): Promise<{ code: string; view: InviteView }> {
    const nowMs = this.deps.clock.nowMs()
    const expiresAt = input.expiresAt ?? new Date(nowMs + INVITE_DEFAULT_TTL_MS)
    if (expiresAt.getTime() <= nowMs)
      throw new InvalidRequestError('expiresAt must be in the future')
    if (expiresAt.getTime() > nowMs + INVITE_MAX_TTL_MS)
      throw new InvalidRequestError('expiresAt may be at most a year away')
    const code = newSecretCode()
    const row = await this.db.transact(async (tx) => {
      const row = await tx.invite.create({
        data: {
          id: newRowId(),
          space: config.uri,
          hash: secretHash(code),
          read: true,
          write: input.write,
          maxUses: input.maxUses,
          expiresAt,
          createdBy: by.did,
          createdAt: this.now(),
        },
      })
      const { write, maxUses } = row
      await this.record(tx, by, 'invite.create', config.uri, row.id, {
        after: { read: true, write, maxUses, expiresAt: expiresAt.toISOString() },
      })
      return row
    })
    return { code, view: { ...inviteFields(row), usedBy: [] } }
  }

  /** A space's invites, newest first, `limit` after `cursor` (an invite id), with their latest users. */
  async listInvites(space: string, limit: number, cursor?: string): Promise<InviteView[]> {
    const rows = await this.db.prisma.invite.findMany({
      where: { space },
      orderBy: [{ createdAt: 'desc' }, { id: 'asc' }],
      take: limit,
      ...(cursor ? { cursor: { id: cursor }, skip: 1 } : {}),
    })
    return Promise.all(
      rows.map(async (row) => {
        const uses = await this.db.prisma.inviteUse.findMany({
          where: { inviteId: row.id },
          orderBy: { at: 'desc' },
          take: USED_BY_SHOWN,
        })
        return { ...inviteFields(row), usedBy: uses.map(({ did, at }) => ({ did, at })) }
      }),
    )
  }

  /** Revokes an invite of `space`; false when there is none by that id. Revoking twice is fine. */
  async revokeInvite(space: string, id: string, by: Actor): Promise<boolean> {
    return this.db.transact(async (tx) => {
      const row = await tx.invite.findUnique({ where: { id } })
      if (!row || row.space !== space) return false
      const { count } = await tx.invite.updateMany({
        where: { id, revokedAt: null },
        data: { revokedAt: this.now() },
      })
      if (count) await this.record(tx, by, 'invite.revoke', space, id)
      return true
    })
  }

  /**
   * The invite of a code, when there is one: its space (to check an audience first, to show on
   * the join page), what it grants and whether it is still usable.
   */
  async findInvite(code: string) {
    const byHash = (c: string) =>
      this.db.prisma.invite.findUnique({ where: { hash: secretHash(c) } })
    // Codes are lowercase base32: one typed or passed on in capitals is the same code. (Codes of
    // before, base64url, are case-sensitive: the exact form is tried first.)
    const row =
      (await byHash(code)) ??
      (code === code.toLowerCase() ? null : await byHash(code.toLowerCase()))
    return row ?? undefined
  }

  /**
   * `did` accepts the invite `code`: it becomes a member with (at least) the invite's flags, and
   * the use is counted, in one transaction. Accepting again, or as a member who already has the
   * flags, changes nothing and uses nothing. Two racing accepts of a last use: one wins, the other
   * is InviteExhausted.
   */
  async acceptInvite(code: string, did: string, door: Actor['door']): Promise<AcceptedInvite> {
    const found = await this.findInvite(code)
    if (!found) throw new AdmissionError('InviteNotFound', 'No such invite')
    const config = await this.deps.hosted(found.space)
    const accepted = { space: config.uri, read: found.read, write: found.write }
    return this.db.transact(async (tx) => {
      // The space's lock first: a ban made meanwhile either is seen below, or removes the member
      // after this commits (SpaceManager.removeMember takes the same lock).
      await this.db.lockSpace(tx, config.uri)
      const invite = await tx.invite.findUniqueOrThrow({ where: { id: found.id } })
      assertUsable(invite, this.now())
      await this.assertNotBanned(tx, config.uri, did)
      if (await tx.inviteUse.findUnique({ where: { inviteId_did: { inviteId: invite.id, did } } }))
        return { ...accepted, changed: false }
      const changed = await this.deps.manager.grantMember(tx, config, did, invite)
      if (!changed) return { ...accepted, changed: false }
      // Counted only if still below the limit as the row is written, so a race cannot overshoot.
      const counted = await tx.invite.updateMany({
        where: {
          id: invite.id,
          ...(invite.maxUses === null ? {} : { uses: { lt: invite.maxUses } }),
        },
        data: { uses: { increment: 1 } },
      })
      if (counted.count === 0) throw new AdmissionError('InviteExhausted', 'This invite is used up')
      await tx.inviteUse.create({ data: { inviteId: invite.id, did, at: this.now() } })
      await this.record(tx, { did, door }, 'invite.accept', config.uri, did, {
        after: { invite: invite.id, read: invite.read, write: invite.write },
      })
      return { ...accepted, changed: true }
    })
  }

  // Join requests

  /** Whether anyone may ask to join the space. */
  async joinRequestsOpen(space: string): Promise<boolean> {
    const row = await this.db.prisma.space.findUnique({
      where: { uri: space },
      select: { joinRequests: true },
    })
    return row?.joinRequests ?? false
  }

  async setJoinRequestsOpen(space: string, open: boolean, by: Actor): Promise<void> {
    await this.db.transact(async (tx) => {
      const before = await tx.space.findUniqueOrThrow({
        where: { uri: space },
        select: { joinRequests: true },
      })
      await tx.space.update({
        where: { uri: space },
        data: { joinRequests: open, updatedAt: this.now() },
      })
      await this.record(tx, by, 'join-settings.change', space, space, {
        before,
        after: { joinRequests: open },
      })
    })
  }

  /**
   * `did` asks to join. Refused when the space takes no requests, the DID is banned or already a
   * member, or has made `requestsPerHour` requests in the last hour. A pending request is
   * answered again as it is (one pending per space and DID).
   */
  async requestJoin(
    config: SpaceConfig,
    did: string,
    door: Actor['door'],
    message?: string,
  ): Promise<JoinRequestView> {
    const now = this.now()
    // Outside the transaction: on SQLite the member table's statements share its connection's gate.
    if (await this.deps.manager.spaces.members.isMember(config.uri, did, 'read'))
      throw new AdmissionError('AlreadyMember', `${did} is already a member`)
    try {
      return await this.db.transact(async (tx) => {
        const pending = await tx.joinRequest.findUnique({
          where: { space_pendingDid: { space: config.uri, pendingDid: did } },
        })
        if (pending) return requestView(pending)
        await this.assertMayRequest(tx, config.uri, did, now)
        const row = await tx.joinRequest.create({
          data: {
            id: newRowId(),
            space: config.uri,
            did,
            message: message ?? null,
            status: 'pending',
            pendingDid: did,
            createdAt: now,
          },
        })
        await this.queueForward(tx, config, row.id, now)
        await this.record(tx, { did, door }, 'join-request.create', config.uri, row.id)
        return requestView(row)
      })
    } catch (err) {
      // A racing request of the same DID made the pending one first: answer it.
      if (!(err instanceof UniqueViolationError)) throw err
      const mine = await this.latestRequest(config.uri, did)
      if (!mine) throw err
      return mine
    }
  }

  /**
   * A space whose readers its managing app decides on gets each new request forwarded to that app
   * (durably, by the relay), in the transaction that makes the request.
   */
  private async queueForward(tx: Tx, config: SpaceConfig, requestId: string, now: Date) {
    if (config.readPolicy.kind !== 'managing-app') return
    await tx.joinRequestNotice.create({
      data: {
        id: newRowId(),
        space: config.uri,
        service: config.readPolicy.managingApp,
        requestId,
        nextAttemptAt: now,
        createdAt: now,
      },
    })
    // After the commit the relay finds it; a wake before is harmless (it looks again later).
    this.deps.onForward?.()
  }

  private async assertMayRequest(tx: Tx, space: string, did: string, now: Date): Promise<void> {
    const row = await tx.space.findUnique({ where: { uri: space }, select: { joinRequests: true } })
    if (!row?.joinRequests)
      throw new AdmissionError('JoinRequestsClosed', 'This space takes no join requests')
    await this.assertNotBanned(tx, space, did)
    const recent = await tx.joinRequest.count({
      where: { did, createdAt: { gt: new Date(now.getTime() - HOUR_MS) } },
    })
    if (recent >= this.deps.requestsPerHour)
      throw new AdmissionError('RateLimitExceeded', 'Too many join requests; try again later')
    const queued = await tx.joinRequest.count({ where: { space, status: 'pending' } })
    if (queued >= PENDING_PER_SPACE_MAX)
      throw new AdmissionError('RateLimitExceeded', 'This space has too many pending requests')
  }

  /** The DID's latest request to join the space, if any. */
  async latestRequest(space: string, did: string): Promise<JoinRequestView | undefined> {
    const row = await this.db.prisma.joinRequest.findFirst({
      where: { space, did },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
    })
    return row ? requestView(row) : undefined
  }

  /** A space's requests, oldest first (a queue), of one status when given. */
  async listRequests(
    space: string,
    opts: { status?: JoinRequestView['status']; limit: number; cursor?: string },
  ): Promise<JoinRequestView[]> {
    const rows = await this.db.prisma.joinRequest.findMany({
      where: { space, ...(opts.status ? { status: opts.status } : {}) },
      orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
      take: opts.limit,
      ...(opts.cursor ? { cursor: { id: opts.cursor }, skip: 1 } : {}),
    })
    return rows.map(requestView)
  }

  /** Approves a pending request: the requester becomes a member with (at least) `flags`. */
  async approve(
    config: SpaceConfig,
    id: string,
    flags: Flags,
    by: Actor,
  ): Promise<JoinRequestView> {
    if (!flags.read && !flags.write)
      throw new InvalidRequestError('An approval grants read, write or both')
    return this.db.transact(async (tx) => {
      await this.db.lockSpace(tx, config.uri)
      const request = await this.pendingRequest(tx, config.uri, id)
      await this.assertNotBanned(tx, config.uri, request.did)
      await this.deps.manager.grantMember(tx, config, request.did, flags)
      const decided = await this.decide(tx, id, {
        status: 'approved',
        ...flags,
        reason: null,
        decidedBy: by.did,
      })
      // Appended last, as every change does: the audit lock is held only while this commits.
      await this.record(tx, by, 'join-request.approve', config.uri, id, {
        after: { did: request.did, ...flags },
      })
      return decided
    })
  }

  /** Denies a pending request; the requester sees the reason. */
  async deny(space: string, id: string, reason: string | null, by: Actor) {
    return this.db.transact(async (tx) => {
      const request = await this.pendingRequest(tx, space, id)
      const decided = await this.decide(tx, id, { status: 'denied', reason, decidedBy: by.did })
      await this.record(tx, by, 'join-request.deny', space, id, {
        after: { did: request.did, reason },
      })
      return decided
    })
  }

  private async pendingRequest(tx: Tx, space: string, id: string): Promise<RequestRow> {
    const row = await tx.joinRequest.findUnique({ where: { id } })
    if (!row || row.space !== space)
      throw new AdmissionError('JoinRequestNotFound', `No join request ${id} in ${space}`)
    if (row.status !== 'pending')
      throw new AdmissionError('AlreadyDecided', `This request was already ${row.status}`)
    return row
  }

  /** Records a decision, if the request is still pending as the row is written (else AlreadyDecided). */
  private async decide(
    tx: Tx,
    id: string,
    decision: Partial<RequestRow> & { status: 'approved' | 'denied' },
  ): Promise<JoinRequestView> {
    const { count } = await tx.joinRequest.updateMany({
      where: { id, status: 'pending' },
      data: { ...decision, pendingDid: null, decidedAt: this.now() },
    })
    if (count === 0) throw new AdmissionError('AlreadyDecided', 'This request was just decided')
    return requestView(await tx.joinRequest.findUniqueOrThrow({ where: { id } }))
  }

  // Bans

  /**
   * Bans `did` from the space (or changes its ban): its pending request is denied, it is removed
   * if a member, and every live credential it holds for the space is revoked, whatever the read
   * policy.
   */
  async ban(
    config: SpaceConfig,
    did: string,
    input: { reason: string | null; expiresAt: Date | null },
    by: Actor,
  ): Promise<BanView> {
    // The authority always passes every perimeter; banning it would mean nothing.
    if (did === config.authority)
      throw new InvalidRequestError('The space authority cannot be banned from its own space')
    const now = this.now()
    if (input.expiresAt && input.expiresAt <= now)
      throw new InvalidRequestError('expiresAt must be in the future')
    const ban = await this.db.transact(async (tx) => {
      // Locks in the order approve takes them (space, request, audit), so the two never deadlock.
      await this.db.lockSpace(tx, config.uri)
      await tx.joinRequest.updateMany({
        where: { space: config.uri, pendingDid: did },
        data: {
          status: 'denied',
          reason: 'banned',
          decidedBy: by.did,
          decidedAt: now,
          pendingDid: null,
        },
      })
      // The member goes in the ban's transaction: banned and still a member is never committed.
      await this.deps.manager.spaces.removeMemberIn(tx, config.uri, did, by)
      const data = { ...input, createdBy: by.did, createdAt: now }
      const before = await tx.ban.findUnique({ where: { space_did: { space: config.uri, did } } })
      const ban = await tx.ban.upsert({
        where: { space_did: { space: config.uri, did } },
        create: { space: config.uri, did, ...data },
        update: data,
      })
      await this.record(tx, by, 'ban.put', config.uri, did, {
        before: before && banFields(before),
        after: banFields(ban),
      })
      return ban
    })
    // After the commit; should this fail, what it holds lapses at expiry.
    await this.deps.credentials.revoke(config, { userDid: did }, { by })
    return ban
  }

  /** A space's bans in DID order after `cursor`, expired ones included (they no longer apply). */
  async listBans(space: string, limit: number, cursor?: string): Promise<BanView[]> {
    return this.db.prisma.ban.findMany({
      where: { space, ...(cursor ? { did: { gt: cursor } } : {}) },
      orderBy: { did: 'asc' },
      take: limit,
    })
  }

  /** Lifts a ban; false when there was none. */
  async lift(space: string, did: string, by: Actor): Promise<boolean> {
    return this.db.transact(async (tx) => {
      const before = await tx.ban.findUnique({ where: { space_did: { space, did } } })
      if (!before) return false
      await tx.ban.delete({ where: { space_did: { space, did } } })
      await this.record(tx, by, 'ban.lift', space, did, { before: banFields(before) })
      return true
    })
  }

  private async assertNotBanned(tx: Tx, space: string, did: string): Promise<void> {
    const ban = await tx.ban.findUnique({ where: { space_did: { space, did } } })
    if (ban && (ban.expiresAt === null || ban.expiresAt > this.now()))
      throw new AdmissionError('Banned', `${did} is banned from this space`)
  }
}

/** A ban as its audit entry shows it. */
const banFields = (b: BanView) => ({
  reason: b.reason,
  expiresAt: b.expiresAt?.toISOString() ?? null,
})

function inviteFields({ hash: _hash, ...rest }: InviteRow): Omit<InviteView, 'usedBy'> {
  return rest
}

/** Refuses a revoked, expired or used-up invite, each with its own name. */
function assertUsable(invite: InviteRow, now: Date): void {
  if (invite.revokedAt) throw new AdmissionError('InviteRevoked', 'This invite was revoked')
  if (invite.expiresAt <= now) throw new AdmissionError('InviteExpired', 'This invite has expired')
  if (invite.maxUses !== null && invite.uses >= invite.maxUses)
    throw new AdmissionError('InviteExhausted', 'This invite is used up')
}

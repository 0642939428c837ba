import { sha256 } from '@noble/hashes/sha2.js'
import type { Clock } from '../clock.js'
import type { Db, Tx } from '../db/client.js'
import { LtHash } from '../crypto/lthash.js'
import { forEachChunk, insertRows, type HotQueries, type SqlValue } from '../db/hot-sql.js'
import { nextTid } from '../spaces/tid.js'

/**
 * A space's member list and its append-only oplog (the source of truth for sync; the member table is
 * its view, written in the same transaction), with an LtHash digest over `memberElement`s kept
 * incrementally, so a consumer replaying the oplog can check what it holds against `state()`.
 */

export interface Flags {
  read: boolean
  write: boolean
}

export interface MemberOpView {
  rev: string
  op: 'add' | 'update' | 'remove'
  did: string
  read: boolean
  write: boolean
}

export interface MemberListState {
  /** The latest op's rev; undefined before the first op. */
  rev: string | undefined
  /** SHA-256 of the LtHash state. */
  digest: Uint8Array
  count: number
}

export class OplogCompactedError extends Error {
  override name = 'OplogCompactedError'
}

/** The set element for a member: changes whenever the member or its flags do. */
export function memberElement(did: string, flags: Flags): string {
  return `${did}/${flags.read ? 1 : 0}/${flags.write ? 1 : 0}`
}

const EMPTY_DIGEST = sha256(new LtHash().state())

const sameFlags = (a: Flags | undefined, b: Flags | undefined) =>
  a === b || (!!a && !!b && a.read === b.read && a.write === b.write)

export class MemberList {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  private async apply(
    tx: Tx,
    space: string,
    did: string,
    next: Flags | undefined,
  ): Promise<{ before: Flags | undefined; changed: boolean }> {
    await this.db.lockSpace(tx, space)
    const row = await tx.spaceMember.findUnique({ where: { space_did: { space, did } } })
    const before = row ? { read: row.read, write: row.write } : undefined
    if (sameFlags(before, next)) return { before, changed: false }
    const state = await tx.memberState.findUnique({ where: { space } })
    const hash = new LtHash(state ? new Uint8Array(state.lthash) : undefined)
    if (before) hash.remove(memberElement(did, before))
    if (next) hash.add(memberElement(did, next))
    const now = this.clock.now()
    const rev = nextTid(now.getTime(), state?.rev)
    const count = (state?.count ?? 0) + (before ? 0 : 1) - (next ? 0 : 1)
    if (next) {
      await tx.spaceMember.upsert({
        where: { space_did: { space, did } },
        create: { space, did, ...next, updatedAt: now },
        update: { ...next, updatedAt: now },
      })
    } else {
      await tx.spaceMember.delete({ where: { space_did: { space, did } } })
    }
    const op = !before ? 'add' : !next ? 'remove' : 'update'
    await tx.memberOp.create({
      data: {
        space,
        rev,
        op,
        did,
        read: next?.read ?? false,
        write: next?.write ?? false,
        createdAt: now,
      },
    })
    const lthash = Buffer.from(hash.state())
    await tx.memberState.upsert({
      where: { space },
      create: { space, rev, lthash, count, updatedAt: now },
      update: { rev, lthash, count, updatedAt: now },
    })
    return { before, changed: true }
  }

  /** Adds a member or changes its flags (no op when nothing changes). Returns the flags before. */
  put(tx: Tx, space: string, did: string, flags: Flags) {
    return this.apply(tx, space, did, flags)
  }

  /** Removes a member (no op when absent). Returns the flags it had. */
  remove(tx: Tx, space: string, did: string) {
    return this.apply(tx, space, did, undefined)
  }

  /** apply() for many entries in set-based hot statements (bulk import); the last entry per DID wins. */
  async applyBatch(
    q: HotQueries,
    space: string,
    entries: { did: string; flags: Flags | undefined }[],
  ): Promise<{ did: string; before: Flags | undefined; after: Flags | undefined }[]> {
    await this.db.lockSpace(q, space)
    const wanted = new Map(entries.map((e) => [e.did, e.flags]))
    const rows = await forEachChunk<{ did: string } & Flags>(
      q,
      'SELECT did, "read", "write" FROM space_member WHERE space = ? AND did IN (*)',
      [space],
      [...wanted.keys()],
      'query',
    )
    const existing = new Map(rows.map((r) => [r.did, { read: r.read, write: r.write }]))
    const changes: { did: string; before: Flags | undefined; after: Flags | undefined }[] = []
    for (const [did, after] of wanted) {
      const before = existing.get(did)
      if (!sameFlags(before, after)) changes.push({ did, before, after })
    }
    if (changes.length === 0) return changes
    const [state] = await q.query<{ rev: string; lthash: Uint8Array; count: number | bigint }>(
      'SELECT rev, lthash, count FROM member_state WHERE space = ?',
      [space],
    )
    const hash = new LtHash(state ? new Uint8Array(state.lthash) : undefined)
    const now = this.clock.now()
    let rev = state?.rev
    let count = Number(state?.count ?? 0)
    const ops: SqlValue[][] = []
    for (const c of changes) {
      if (c.before) hash.remove(memberElement(c.did, c.before))
      if (c.after) hash.add(memberElement(c.did, c.after))
      count += (c.before ? 0 : 1) - (c.after ? 0 : 1)
      rev = nextTid(now.getTime(), rev)
      const op = !c.before ? 'add' : !c.after ? 'remove' : 'update'
      ops.push([space, rev, op, c.did, c.after?.read ?? false, c.after?.write ?? false, now])
    }
    await insertRows(
      q,
      'space_member',
      ['space', 'did', 'read', 'write', 'updated_at'],
      changes
        .filter((c) => !c.before && c.after)
        .map((c) => [space, c.did, c.after!.read, c.after!.write, now]),
    )
    for (const read of [true, false]) {
      for (const write of [true, false]) {
        await forEachChunk(
          q,
          'UPDATE space_member SET "read" = ?, "write" = ?, updated_at = ? WHERE space = ? AND did IN (*)',
          [read, write, now, space],
          changes
            .filter((c) => c.before && c.after && c.after.read === read && c.after.write === write)
            .map((c) => c.did),
          'execute',
        )
      }
    }
    await forEachChunk(
      q,
      'DELETE FROM space_member WHERE space = ? AND did IN (*)',
      [space],
      changes.filter((c) => c.before && !c.after).map((c) => c.did),
      'execute',
    )
    await insertRows(
      q,
      'member_op',
      ['space', 'rev', 'op', 'did', 'read', 'write', 'created_at'],
      ops,
    )
    await q.execute(
      `INSERT INTO member_state (space, rev, lthash, count, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (space) DO UPDATE SET rev = excluded.rev, lthash = excluded.lthash,
         count = excluded.count, updated_at = excluded.updated_at`,
      [space, rev!, hash.state(), count, now],
    )
    return changes
  }

  /** Every member in DID order, read in pages (bulk export). */
  async *iterate(space: string, pageSize = 5000): AsyncGenerator<{ did: string } & Flags> {
    let cursor: string | undefined
    for (;;) {
      const page = await this.db.prisma.spaceMember.findMany({
        where: { space, ...(cursor ? { did: { gt: cursor } } : {}) },
        orderBy: { did: 'asc' },
        take: pageSize,
        select: { did: true, read: true, write: true },
      })
      yield* page
      if (page.length < pageSize) return
      cursor = page[page.length - 1]!.did
    }
  }

  /** Drops the whole list and its history (the space was deleted). */
  async clear(tx: Tx, space: string): Promise<void> {
    await tx.spaceMember.deleteMany({ where: { space } })
    await tx.memberOp.deleteMany({ where: { space } })
    await tx.memberState.deleteMany({ where: { space } })
  }

  async state(space: string): Promise<MemberListState> {
    const s = await this.db.prisma.memberState.findUnique({ where: { space } })
    if (!s) return { rev: undefined, digest: EMPTY_DIGEST, count: 0 }
    return { rev: s.rev, digest: sha256(new Uint8Array(s.lthash)), count: s.count }
  }

  /** Ops after `since`, oldest first; OplogCompactedError when `since` predates compaction (resync). */
  async ops(
    space: string,
    since: string | undefined,
    limit: number,
  ): Promise<{ ops: MemberOpView[]; state: MemberListState }> {
    const [rows, raw] = await Promise.all([
      this.db.prisma.memberOp.findMany({
        where: { space, ...(since ? { rev: { gt: since } } : {}) },
        orderBy: { rev: 'asc' },
        take: limit,
        select: { rev: true, op: true, did: true, read: true, write: true },
      }),
      this.db.prisma.memberState.findUnique({
        where: { space },
        select: { compactedThrough: true },
      }),
    ])
    const compacted = raw?.compactedThrough
    if (compacted && (since === undefined || since < compacted)) {
      throw new OplogCompactedError(
        `ops up to ${compacted} were compacted; resync from listMembers`,
      )
    }
    return { ops: rows as MemberOpView[], state: await this.state(space) }
  }

  /** Compacts every space with ops older than `before` (at most `spaces` of them per call). */
  async compactAll(before: Date, spaces = 100): Promise<number> {
    const stale = await this.db.prisma.memberOp.findMany({
      where: { createdAt: { lt: before } },
      distinct: ['space'],
      select: { space: true },
      take: spaces,
    })
    let removed = 0
    for (const { space } of stale) removed += await this.compact(space, before)
    return removed
  }

  /** Deletes ops older than `before`, remembering the newest deleted rev. Returns how many. */
  async compact(space: string, before: Date): Promise<number> {
    return this.db.transact(async (tx) => {
      await this.db.lockSpace(tx, space)
      const last = await tx.memberOp.findFirst({
        where: { space, createdAt: { lt: before } },
        orderBy: { rev: 'desc' },
        select: { rev: true },
      })
      if (!last) return 0
      const { count } = await tx.memberOp.deleteMany({ where: { space, rev: { lte: last.rev } } })
      await tx.memberState.update({ where: { space }, data: { compactedThrough: last.rev } })
      return count
    })
  }
}

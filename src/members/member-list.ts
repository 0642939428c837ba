import { sha256 } from '@noble/hashes/sha2.js'
import type { Clock } from '../clock.js'
import type { Db } from '../db/client.js'
import { LtHash } from '../crypto/lthash.js'
import { forEachChunk, insertRows, type HotQueries, type SqlValue } from '../db/hot-sql.js'
import { dayOf } from '../spaces/tally.js'
import { encodeTid, nextTid } from '../spaces/tid.js'

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

export interface MembersOnDay {
  day: string
  /** At the day's end; null when ops after it were compacted. */
  members: number | null
  added: number | null
  removed: number | null
}

const dayAfter = (day: string) => dayOf(Date.parse(`${day}T00:00:00Z`) + 86_400_000)

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
    q: HotQueries,
    space: string,
    did: string,
    next: Flags | undefined,
  ): Promise<{ before: Flags | undefined; changed: boolean }> {
    await this.db.lockSpace(q, space)
    const [before] = await q.query<Flags>(
      'SELECT "read", "write" FROM space_member WHERE space = ? AND did = ?',
      [space, did],
    )
    if (sameFlags(before, next)) return { before, changed: false }
    const [state] = await q.query<{ rev: string; lthash: Uint8Array; count: number | bigint }>(
      'SELECT rev, lthash, count FROM member_state WHERE space = ?',
      [space],
    )
    const hash = new LtHash(state ? new Uint8Array(state.lthash) : undefined)
    if (before) hash.remove(memberElement(did, before))
    if (next) hash.add(memberElement(did, next))
    const now = this.clock.now()
    const rev = nextTid(now.getTime(), state?.rev)
    const count = Number(state?.count ?? 0) + (before ? 0 : 1) - (next ? 0 : 1)
    if (next) {
      await q.execute(
        `INSERT INTO space_member (space, did, "read", "write", updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (space, did) DO UPDATE SET "read" = excluded."read", "write" = excluded."write",
           updated_at = excluded.updated_at`,
        [space, did, next.read, next.write, now],
      )
    } else {
      await q.execute('DELETE FROM space_member WHERE space = ? AND did = ?', [space, did])
    }
    const op = !before ? 'add' : !next ? 'remove' : 'update'
    await insertRows(q, 'member_op', OP_COLUMNS, [
      [space, rev, op, did, next?.read ?? false, next?.write ?? false, now],
    ])
    await this.saveState(q, space, rev, hash, count, now)
    return { before, changed: true }
  }

  private saveState(
    q: HotQueries,
    space: string,
    rev: string,
    hash: LtHash,
    count: number,
    now: Date,
  ) {
    return q.execute(
      `INSERT INTO member_state (space, rev, lthash, count, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (space) DO UPDATE SET rev = excluded.rev, lthash = excluded.lthash,
         count = excluded.count, updated_at = excluded.updated_at`,
      [space, rev, hash.state(), count, now],
    )
  }

  /** Adds a member or changes its flags (no op when nothing changes). Returns the flags before. */
  put(q: HotQueries, space: string, did: string, flags: Flags) {
    return this.apply(q, space, did, flags)
  }

  /**
   * Raises a member's flags to at least `flags`, adding it when absent; never lowers one (an
   * accepted invite or an approved request only grants). Returns what `put` returns.
   */
  async raise(q: HotQueries, space: string, did: string, flags: Flags) {
    await this.db.lockSpace(q, space)
    const [before] = await q.query<Flags>(
      'SELECT "read", "write" FROM space_member WHERE space = ? AND did = ?',
      [space, did],
    )
    const next = { read: flags.read || !!before?.read, write: flags.write || !!before?.write }
    return this.apply(q, space, did, next)
  }

  /** Removes a member (no op when absent). Returns the flags it had. */
  remove(q: HotQueries, space: string, did: string) {
    return this.apply(q, space, did, undefined)
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
    await insertRows(q, 'member_op', OP_COLUMNS, ops)
    await this.saveState(q, space, rev!, hash, count, now)
    return changes
  }

  /** One primary-key lookup (every credential request): is `did` a member with `access` set? */
  async isMember(space: string, did: string, access: keyof Flags): Promise<boolean> {
    const [row] = await this.db.hot.query<Flags>(
      'SELECT "read", "write" FROM space_member WHERE space = ? AND did = ?',
      [space, did],
    )
    return row?.[access] ?? false
  }

  /** Of `dids`, those that are members of the space with `access`: one query per 500. */
  async among(space: string, dids: string[], access: keyof Flags): Promise<Set<string>> {
    const rows = await forEachChunk<{ did: string }>(
      this.db.hot,
      `SELECT did FROM space_member WHERE space = ? AND "${access === 'read' ? 'read' : 'write'}" = ? AND did IN (*)`,
      [space, true],
      dids,
      'query',
    )
    return new Set(rows.map((r) => r.did))
  }

  /** Members in DID order after `cursor` (exclusive), only DIDs starting with `prefix` when given. */
  list(
    space: string,
    limit: number,
    cursor?: string,
    prefix?: string,
  ): Promise<({ did: string } & Flags)[]> {
    const where = prefix ? ' AND did >= ? AND substr(did, 1, ?) = ?' : ''
    return this.db.hot.query(
      `SELECT did, "read", "write" FROM space_member WHERE space = ? AND did > ?${where} ORDER BY did LIMIT ?`,
      [space, cursor ?? '', ...(prefix ? [prefix, prefix.length, prefix] : []), limit],
    )
  }

  /** Every member in DID order, read in pages (bulk export). */
  async *iterate(space: string, pageSize = 5000): AsyncGenerator<{ did: string } & Flags> {
    let cursor: string | undefined
    for (;;) {
      const page = await this.list(space, pageSize, cursor)
      yield* page
      if (page.length < pageSize) return
      cursor = page[page.length - 1]!.did
    }
  }

  /** Drops the whole list and its history (the space was deleted). */
  async clear(q: HotQueries, space: string): Promise<void> {
    for (const table of ['space_member', 'member_op', 'member_state'])
      await q.execute(`DELETE FROM ${table} WHERE space = ?`, [space])
  }

  async state(space: string): Promise<MemberListState> {
    const [s] = await this.db.hot.query<{
      rev: string
      lthash: Uint8Array
      count: number | bigint
    }>('SELECT rev, lthash, count FROM member_state WHERE space = ?', [space])
    if (!s) return { rev: undefined, digest: EMPTY_DIGEST, count: 0 }
    return { rev: s.rev, digest: sha256(new Uint8Array(s.lthash)), count: Number(s.count) }
  }

  /** Ops after `since`, oldest first; OplogCompactedError when `since` predates compaction (resync). */
  async ops(
    space: string,
    since: string | undefined,
    limit: number,
  ): Promise<{ ops: MemberOpView[]; state: MemberListState }> {
    const [rows, [raw]] = await Promise.all([
      this.db.hot.query<MemberOpView>(
        `SELECT rev, op, did, "read", "write" FROM member_op WHERE space = ? AND rev > ?
         ORDER BY rev LIMIT ?`,
        [space, since ?? '', limit],
      ),
      this.db.hot.query<{ compacted_through: string | null }>(
        'SELECT compacted_through FROM member_state WHERE space = ?',
        [space],
      ),
    ])
    const compacted = raw?.compacted_through
    if (compacted && (since === undefined || since < compacted)) {
      throw new OplogCompactedError(
        `ops up to ${compacted} were compacted; resync from listMembers`,
      )
    }
    return { ops: rows, state: await this.state(space) }
  }

  /**
   * Members at the end of each of `days` (UTC `YYYY-MM-DD`, ascending), and the adds and removals on
   * each: counted back from today's count through the oplog, bucketed by rev (a TID, so in time
   * order) in one statement. A day whose ops were compacted away has null for what they decide.
   */
  async daily(space: string, days: string[]): Promise<MembersOnDay[]> {
    const starts = [...days, dayAfter(days.at(-1)!)].map((day) =>
      encodeTid(BigInt(Date.parse(`${day}T00:00:00Z`)) * 1000n, 0),
    )
    const buckets = starts
      .slice(1)
      .map(() => 'WHEN rev < ? THEN ?')
      .join(' ')
    const [rows, [state]] = await Promise.all([
      this.db.hot.query<{ bucket: number | bigint; op: string; n: number | bigint }>(
        `SELECT bucket, op, COUNT(*) AS n FROM (
           SELECT CASE ${buckets} ELSE ? END AS bucket, op FROM member_op
           WHERE space = ? AND rev >= ? AND op <> 'update') ops
         GROUP BY bucket, op`,
        [...starts.slice(1).flatMap((end, i) => [end, i]), days.length, space, starts[0]!],
      ),
      this.db.hot.query<{ count: number | bigint; compacted_through: string | null }>(
        'SELECT count, compacted_through FROM member_state WHERE space = ?',
        [space],
      ),
    ])
    // Bucket i: ops on days[i]; the last, ops dated after the last day (a clock that stepped back).
    const added = starts.map(() => 0)
    const removed = starts.map(() => 0)
    for (const r of rows) (r.op === 'add' ? added : removed)[Number(r.bucket)]! += Number(r.n)
    const compacted = state?.compacted_through ?? ''
    let members = Number(state?.count ?? 0) - added.at(-1)! + removed.at(-1)!
    const out: MembersOnDay[] = []
    for (let i = days.length - 1; i >= 0; i--) {
      const whole = compacted < starts[i]!
      out.push({
        day: days[i]!,
        members: compacted < starts[i + 1]! ? members : null,
        added: whole ? added[i]! : null,
        removed: whole ? removed[i]! : null,
      })
      members += removed[i]! - added[i]!
    }
    return out.reverse()
  }

  /** Compacts every space with ops older than `before` (at most `spaces` of them per call). */
  async compactAll(before: Date, spaces = 100): Promise<number> {
    const stale = await this.db.hot.query<{ space: string }>(
      'SELECT DISTINCT space FROM member_op WHERE created_at < ? LIMIT ?',
      [before, spaces],
    )
    let removed = 0
    for (const { space } of stale) removed += await this.compact(space, before)
    return removed
  }

  /** Deletes ops older than `before`, remembering the newest deleted rev. Returns how many. */
  async compact(space: string, before: Date): Promise<number> {
    return this.db.hot.transaction(async (q) => {
      await this.db.lockSpace(q, space)
      const [last] = await q.query<{ rev: string }>(
        'SELECT rev FROM member_op WHERE space = ? AND created_at < ? ORDER BY rev DESC LIMIT 1',
        [space, before],
      )
      if (!last) return 0
      const count = await q.execute('DELETE FROM member_op WHERE space = ? AND rev <= ?', [
        space,
        last.rev,
      ])
      await q.execute('UPDATE member_state SET compacted_through = ? WHERE space = ?', [
        last.rev,
        space,
      ])
      return count
    })
  }
}

const OP_COLUMNS = ['space', 'rev', 'op', 'did', 'read', 'write', 'created_at']

import { createHash } from 'node:crypto'
import type { Clock } from '../clock.js'
import type { Db, Tx } from '../db/client.js'
import type { HotQueries, SqlValue } from '../db/hot-sql.js'

/**
 * The audit log: every management action and refusal, appended in the transaction of the change,
 * hash-chained per authority. docs/audit.md states the encoding the hash covers, so anyone holding
 * an export can check the chain without Gatehouse.
 */

/** Who acted, and through which door. */
export type Actor = {
  did: string | 'operator' | 'system'
  door: 'rest' | 'xrpc' | 'cli' | 'system'
}

/** Actions that come from inside Gatehouse (tests, migrations of state) rather than a caller. */
export const SYSTEM_ACTOR: Actor = { did: 'system', door: 'system' }
/** The operator at the command line. */
export const OPERATOR: Actor = { did: 'operator', door: 'cli' }

export interface AuditInput {
  authority: string
  actor: Actor
  action: string
  space?: string | null
  subject?: string | null
  /** Any JSON value; stored as its JSON text. */
  before?: unknown
  after?: unknown
  outcome?: 'ok' | 'refused'
  reason?: string | null
}

export interface AuditEntryView {
  authority: string
  seq: number
  at: Date
  actor: string
  door: string
  action: string
  space: string | null
  subject: string | null
  /** JSON text, exactly as hashed. */
  before: string | null
  after: string | null
  outcome: string
  reason: string | null
  prevHash: string
  hash: string
}

export type VerifyResult =
  | { ok: true; entries: number; head: string | null }
  | { ok: false; firstBroken: number; why: string }

export interface AuditQuery {
  authority: string
  from?: Date
  to?: Date
  actor?: string
  space?: string
  action?: string
  limit: number
  /** The `seq` of the last entry of the previous page: pages go newest first. */
  cursor?: number
}

/** Bytes before the first entry: its prev_hash. */
export const GENESIS = Buffer.alloc(32)
/** The first element of every hashed array; a new encoding would get a new tag. */
export const ENCODING_TAG = 'gatehouse-audit-v1'
/** Entries read per query while verifying or exporting. */
const PAGE = 1000

/** A row as read: the entry, with its hashes as bytes. */
export type AuditRow = Omit<AuditEntryView, 'prevHash' | 'hash'> & {
  prevHash: Uint8Array
  hash: Uint8Array
}

const ROW = `authority_did AS authority, seq, at, actor, door, action, space, subject, "before",
  "after", outcome, reason, prev_hash AS "prevHash", hash`

const json = (v: unknown) => (v === undefined || v === null ? null : JSON.stringify(v))

/**
 * SHA-256 over the UTF-8 JSON text of a fixed-order array of every field and the previous hash (hex):
 * no field can be changed, moved or dropped without changing the hash.
 */
export function entryHash(e: Omit<AuditEntryView, 'hash' | 'prevHash'>, prev: Buffer): Buffer {
  const fields = [
    ENCODING_TAG,
    e.authority,
    e.seq,
    e.at.toISOString(),
    e.actor,
    e.door,
    e.action,
    e.space,
    e.subject,
    e.before,
    e.after,
    e.outcome,
    e.reason,
    prev.toString('hex'),
  ]
  return createHash('sha256').update(JSON.stringify(fields), 'utf8').digest()
}

function toView(r: AuditRow): AuditEntryView {
  return {
    ...r,
    seq: Number(r.seq),
    prevHash: Buffer.from(r.prevHash).toString('hex'),
    hash: Buffer.from(r.hash).toString('hex'),
  }
}

export class AuditLog {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    /** Told when a refusal could not be recorded (the refusal still goes out). */
    private readonly onRecordError: (err: unknown) => void = () => {},
  ) {}

  /**
   * Appends an entry inside the caller's transaction, so it commits or rolls back with the change
   * it records. Takes the authority's lock first on PostgreSQL: two appends must not read the same
   * head (SQLite runs one write transaction at a time anyway).
   */
  async append(on: Tx | HotQueries, input: AuditInput): Promise<AuditEntryView> {
    const q = 'query' in on ? on : this.db.in(on)
    if (this.db.kind === 'postgres')
      await q.execute('SELECT pg_advisory_xact_lock(hashtext(?))', [`audit:${input.authority}`])
    const [head] = await q.query<{ seq: number | bigint; hash: Uint8Array }>(
      'SELECT seq, hash FROM audit_head WHERE authority_did = ?',
      [input.authority],
    )
    const prev = head ? Buffer.from(head.hash) : GENESIS
    const entry = {
      authority: input.authority,
      seq: Number(head?.seq ?? 0) + 1,
      at: this.clock.now(),
      actor: input.actor.did,
      door: input.actor.door,
      action: input.action,
      space: input.space ?? null,
      subject: input.subject ?? null,
      before: json(input.before),
      after: json(input.after),
      outcome: input.outcome ?? 'ok',
      reason: input.reason ?? null,
    }
    const hash = entryHash(entry, prev)
    const values: SqlValue[] = [...Object.values(entry), prev, hash]
    await q.execute(
      `INSERT INTO audit_entry (authority_did, seq, at, actor, door, action, space, subject,
         "before", "after", outcome, reason, prev_hash, hash)
       VALUES (${values.map(() => '?').join(', ')})`,
      values,
    )
    await q.execute(
      `INSERT INTO audit_head (authority_did, seq, hash) VALUES (?, ?, ?)
       ON CONFLICT (authority_did) DO UPDATE SET seq = excluded.seq, hash = excluded.hash`,
      [entry.authority, entry.seq, hash],
    )
    return { ...entry, prevHash: prev.toString('hex'), hash: hash.toString('hex') }
  }

  /**
   * Records a refused management call, when `authority` is one of ours: a caller naming a DID we
   * do not host must not grow a log for it. Never throws: the refusal itself must still go out.
   */
  async recordRefusal(input: Omit<AuditInput, 'outcome'>): Promise<void> {
    try {
      await this.db.transact(async (tx) => {
        const hosted = await tx.authority.findUnique({
          where: { did: input.authority },
          select: { did: true },
        })
        if (hosted) await this.append(tx, { ...input, outcome: 'refused' })
      })
    } catch (err) {
      this.onRecordError(err)
    }
  }

  /**
   * Walks the authority's chain in seq order and names the first entry that is not what the chain
   * says it should be: edited (its hash), inserted or reordered (its seq or prev_hash), deleted (a
   * missing seq), or a deleted tail (the head names a later entry than the last one).
   */
  async verify(authority: string): Promise<VerifyResult> {
    let expected = 1
    let prev = GENESIS
    for (;;) {
      // No lower bound on seq: an entry slipped in below 1 is as broken as any other.
      const rows = await this.db.hot.query<AuditRow>(
        `SELECT ${ROW} FROM audit_entry WHERE authority_did = ?${expected > 1 ? ' AND seq >= ?' : ''}
         ORDER BY seq LIMIT ?`,
        [authority, ...(expected > 1 ? [expected] : []), PAGE],
      )
      for (const r of rows) {
        const broken = checkEntry(r, expected, prev)
        if (broken) return broken
        prev = Buffer.from(r.hash)
        expected++
      }
      if (rows.length === PAGE) continue
      // The head is read after the entries (an entry and its head commit together): naming a
      // later entry, it was appended meanwhile, and the next round reads it, or it is a deleted
      // tail, when that round finds nothing more.
      const head = await this.head(authority)
      if (rows.length > 0 && head.seq >= expected) continue
      return checkHead(head, expected - 1, prev)
    }
  }

  private async head(authority: string): Promise<{ seq: number; hash: Buffer | undefined }> {
    const [head] = await this.db.hot.query<{ seq: number | bigint; hash: Uint8Array }>(
      'SELECT seq, hash FROM audit_head WHERE authority_did = ?',
      [authority],
    )
    return { seq: Number(head?.seq ?? 0), hash: head && Buffer.from(head.hash) }
  }

  /** Entries newest first, filtered, `limit` after `cursor`. */
  async query(q: AuditQuery): Promise<AuditEntryView[]> {
    const where = ['authority_did = ?']
    const args: SqlValue[] = [q.authority]
    const filters: [string, SqlValue | undefined][] = [
      ['at >= ?', q.from],
      ['at < ?', q.to],
      ['actor = ?', q.actor],
      ['space = ?', q.space],
      ['action = ?', q.action],
      ['seq < ?', q.cursor],
    ]
    for (const [sql, value] of filters) {
      if (value === undefined) continue
      where.push(sql)
      args.push(value)
    }
    const rows = await this.db.hot.query<AuditRow>(
      `SELECT ${ROW} FROM audit_entry WHERE ${where.join(' AND ')} ORDER BY seq DESC LIMIT ?`,
      [...args, q.limit],
    )
    return rows.map(toView)
  }

  /** Every entry of the authority in seq order, read a page at a time. */
  async *export(authority: string): AsyncGenerator<AuditEntryView> {
    for (let after = 0; ;) {
      const rows = await this.db.hot.query<AuditRow>(
        `SELECT ${ROW} FROM audit_entry WHERE authority_did = ? AND seq > ? ORDER BY seq LIMIT ?`,
        [authority, after, PAGE],
      )
      for (const r of rows) yield toView(r)
      if (rows.length < PAGE) return
      after = Number(rows[rows.length - 1]!.seq)
    }
  }
}

/**
 * Checks a chain held in memory (an authority being imported), rows in seq order, as `verify`
 * checks the stored one.
 */
export function verifyChain(
  rows: AuditRow[],
  head: { seq: number; hash: Uint8Array } | undefined,
): VerifyResult {
  let prev = GENESIS
  for (const [i, r] of rows.entries()) {
    const broken = checkEntry(r, i + 1, prev)
    if (broken) return broken
    prev = Buffer.from(r.hash)
  }
  return checkHead({ seq: head?.seq ?? 0, hash: head && Buffer.from(head.hash) }, rows.length, prev)
}

/** Whether the chain read, ending at `last` with `lastHash`, ends where the head says. */
function checkHead(
  head: { seq: number; hash: Buffer | undefined },
  last: number,
  lastHash: Buffer,
): VerifyResult {
  if (head.seq > last)
    return { ok: false, firstBroken: last + 1, why: `missing: the head names entry ${head.seq}` }
  if (head.seq < last)
    return { ok: false, firstBroken: head.seq + 1, why: 'beyond the head: not appended here' }
  if (head.hash && !lastHash.equals(head.hash))
    return { ok: false, firstBroken: last, why: 'its hash differs from the head’s' }
  return { ok: true, entries: last, head: head.hash?.toString('hex') ?? null }
}

/** Why `r` breaks the chain where entry `expected` after `prev` should be, if it does. */
function checkEntry(r: AuditRow, expected: number, prev: Buffer): VerifyResult | undefined {
  const seq = Number(r.seq)
  const broken = (why: string, at = seq): VerifyResult => ({ ok: false, firstBroken: at, why })
  if (seq < expected) return broken('out of sequence')
  if (seq > expected) return broken('missing', expected)
  if (!prev.equals(Buffer.from(r.prevHash)))
    return broken('its prev_hash is not the previous entry’s hash')
  const view = toView(r)
  if (!entryHash(view, Buffer.from(r.prevHash)).equals(Buffer.from(r.hash)))
    return broken('its hash does not match its contents')
  return undefined
}

/** JSON lines of an export: one entry a line, dates ISO 8601, hashes hex. */
export function auditLine(e: AuditEntryView): string {
  return `${JSON.stringify({ ...e, at: e.at.toISOString() })}\n`
}

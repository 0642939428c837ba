import type { HotQueries } from '../db/hot-sql.js'

/**
 * Every statement on a space's writer set (`space_writer`, what listRepos serves) and its event log
 * (`space_event`, what the relay sends from). Hot tables: SQL only, on `db.hot` or `db.in(tx)`.
 */

export interface SpaceEvent {
  space: string
  spaceRev: string
  kind: 'write' | 'deleted'
  repo: string | null
  repoRev: string | null
  hash: Uint8Array | null
  prevSpaceRev: string | null
  createdAt: Date
}

export interface SpaceWriter {
  did: string
  repoRev: string
  hash: Uint8Array
  spaceRev: string
}

const EVENT = `space, space_rev AS "spaceRev", kind, repo, repo_rev AS "repoRev", hash,
  prev_space_rev AS "prevSpaceRev", created_at AS "createdAt"`

/** The space's newest spaceRev, of its writers and its events (either may have been pruned). */
export async function latestSpaceRev(q: HotQueries, space: string): Promise<string | undefined> {
  const [max] = await q.query<{ rev: string | null }>(
    `SELECT MAX(r) AS rev FROM (
       SELECT MAX(space_rev) AS r FROM space_writer WHERE space = ?
       UNION ALL SELECT MAX(space_rev) AS r FROM space_event WHERE space = ?) AS revs`,
    [space, space],
  )
  return max?.rev ?? undefined
}

/** The repo's current rev in the writer set, if it wrote before. */
export async function writerRev(q: HotQueries, space: string, repo: string) {
  const [row] = await q.query<{ repo_rev: string }>(
    'SELECT repo_rev FROM space_writer WHERE space = ? AND did = ?',
    [space, repo],
  )
  return row?.repo_rev
}

/** Moves the repo in the writer set to `spaceRev` and appends its write event. */
export async function recordWrite(
  q: HotQueries,
  space: string,
  write: { repo: string; repoRev: string; hash: Uint8Array },
  spaceRev: string,
  prevSpaceRev: string | undefined,
  now: Date,
): Promise<void> {
  await q.execute(
    `INSERT INTO space_writer (space, did, repo_rev, hash, space_rev, updated_at)
     VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (space, did) DO UPDATE SET repo_rev = excluded.repo_rev, hash = excluded.hash,
       space_rev = excluded.space_rev, updated_at = excluded.updated_at`,
    [space, write.repo, write.repoRev, write.hash, spaceRev, now],
  )
  await q.execute(
    `INSERT INTO space_event (space, space_rev, kind, repo, repo_rev, hash, prev_space_rev, created_at)
     VALUES (?, ?, 'write', ?, ?, ?, ?, ?)`,
    [space, spaceRev, write.repo, write.repoRev, write.hash, prevSpaceRev ?? null, now],
  )
}

export async function recordDeletion(q: HotQueries, space: string, spaceRev: string, now: Date) {
  await q.execute(
    `INSERT INTO space_event (space, space_rev, kind, created_at) VALUES (?, ?, 'deleted', ?)`,
    [space, spaceRev, now],
  )
}

export async function eventAt(q: HotQueries, space: string, spaceRev: string) {
  const [event] = await q.query<SpaceEvent>(
    `SELECT ${EVENT} FROM space_event WHERE space = ? AND space_rev = ?`,
    [space, spaceRev],
  )
  return event
}

/** The space's events after `from` (all when empty), oldest first, at most `limit`. */
export function eventsAfter(q: HotQueries, space: string, from: string, limit: number) {
  return q.query<SpaceEvent>(
    `SELECT ${EVENT} FROM space_event WHERE space = ? AND space_rev > ? ORDER BY space_rev LIMIT ?`,
    [space, from, limit],
  )
}

/** Writers with spaceRev after `cursor` (all when empty), ascending: one that wrote again moved later. */
export function writersAfter(q: HotQueries, space: string, cursor: string, limit: number) {
  return q.query<SpaceWriter>(
    `SELECT did, repo_rev AS "repoRev", hash, space_rev AS "spaceRev" FROM space_writer
     WHERE space = ? AND space_rev > ? ORDER BY space_rev LIMIT ?`,
    [space, cursor, limit],
  )
}

export async function writerDids(q: HotQueries, space: string): Promise<string[]> {
  const rows = await q.query<{ did: string }>('SELECT did FROM space_writer WHERE space = ?', [
    space,
  ])
  return rows.map((r) => r.did)
}

/** Empties the writer set (the space was deleted); returns who was in it. */
export async function dropWriters(q: HotQueries, space: string): Promise<string[]> {
  const dids = await writerDids(q, space)
  await q.execute('DELETE FROM space_writer WHERE space = ?', [space])
  return dids
}

/** The oldest `limit` events created before `before`, across spaces. */
export function oldestEvents(q: HotQueries, before: Date, limit: number) {
  return q.query<{ space: string; spaceRev: string }>(
    `SELECT space, space_rev AS "spaceRev" FROM space_event WHERE created_at < ?
     ORDER BY created_at LIMIT ?`,
    [before, limit],
  )
}

/** Deletes the space's events up to `spaceRev` created before `before`; returns how many. */
export function pruneEvents(q: HotQueries, space: string, spaceRev: string, before: Date) {
  return q.execute(
    'DELETE FROM space_event WHERE space = ? AND space_rev <= ? AND created_at < ?',
    [space, spaceRev, before],
  )
}

/**
 * How many live registrations are behind, and when the oldest event one of them has not been sent
 * yet was written (the relay's lag, for /metrics): counted in the database, one row whatever the
 * number of registrations.
 */
export async function lanesBehind(
  q: HotQueries,
  now: Date,
): Promise<{ count: number; oldest: Date | undefined }> {
  const [row] = await q.query<{ n: number | bigint | string; oldest: string | Date | null }>(
    `SELECT COUNT(since) AS n, MIN(since) AS oldest FROM (
       SELECT (SELECT e.created_at FROM space_event e
                WHERE e.space = r.space AND e.space_rev > COALESCE(r.cursor, '')
                ORDER BY e.space_rev LIMIT 1) AS since
         FROM notify_registration r WHERE r.expires_at > ?) lanes`,
    [now],
  )
  // An aggregate has no declared type: SQLite answers Prisma's ISO text, PostgreSQL a Date.
  const oldest = row?.oldest ?? null
  return { count: Number(row?.n ?? 0), oldest: oldest === null ? undefined : new Date(oldest) }
}

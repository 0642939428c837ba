import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import type { Clock } from '../clock.js'
import type { Db } from './client.js'

/** Names per statement (three placeholders each). */
const CHUNK = 200

/**
 * Named leases, for work that one process at a time may do when several Gatehouse processes share a
 * PostgreSQL database: a space's deliveries (`relay:<space>`) and the janitor's pass. A claim takes
 * the names that are free or expired, in one statement whose row locks settle any race; the holder
 * renews what it holds while it works and releases it when done; a holder that dies loses its leases
 * when they expire, `ttlMs` after its last renewal, and the next process to claim takes them over.
 * Expiry reads each process's clock: hosts must agree on the time to well within the TTL.
 *
 * SQLite is one process per database (docs/operating.md): there every claim is granted without a
 * statement, and the table stays empty.
 */
export class Leases {
  /** This process's name on its leases: host, pid and a random part (a pid can be reused). */
  readonly holder = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`
  readonly shared: boolean

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    readonly ttlMs: number,
  ) {
    this.shared = db.kind === 'postgres'
  }

  /** Takes (or keeps) each of `names` not held by another process; returns those now ours. */
  claim(names: string[]): Promise<Set<string>> {
    return this.each(names, async (chunk) => {
      const now = this.clock.now()
      const until = new Date(now.getTime() + this.ttlMs)
      return this.db.hot.query<{ name: string }>(
        `INSERT INTO lease (name, holder, expires_at) VALUES ${chunk.map(() => '(?, ?, ?)').join(', ')}
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
         WHERE lease.holder = excluded.holder OR lease.expires_at <= ?
         RETURNING name`,
        [...chunk.flatMap((name) => [name, this.holder, until]), now],
      )
    })
  }

  /** Extends those of `names` still ours by a TTL from now; returns them (the others were lost). */
  renew(names: string[]): Promise<Set<string>> {
    return this.each(names, (chunk) =>
      this.db.hot.query<{ name: string }>(
        `UPDATE lease SET expires_at = ? WHERE holder = ? AND name IN (${chunk.map(() => '?').join(', ')})
         RETURNING name`,
        [new Date(this.clock.nowMs() + this.ttlMs), this.holder, ...chunk],
      ),
    )
  }

  /** The names starting with `prefix` that another process holds now (none on SQLite). */
  async heldElsewhere(prefix: string): Promise<string[]> {
    if (!this.shared) return []
    const rows = await this.db.hot.query<{ name: string }>(
      `SELECT name FROM lease WHERE holder <> ? AND expires_at > ? AND name LIKE ?`,
      [this.holder, this.clock.now(), `${prefix}%`],
    )
    return rows.map((row) => row.name)
  }

  /** Gives `names` up at once, so another process need not wait for them to expire. */
  async release(names: string[]): Promise<void> {
    await this.each(names, (chunk) =>
      this.db.hot.query<{ name: string }>(
        `DELETE FROM lease WHERE holder = ? AND name IN (${chunk.map(() => '?').join(', ')})
         RETURNING name`,
        [this.holder, ...chunk],
      ),
    )
  }

  private async each(
    names: string[],
    run: (chunk: string[]) => Promise<{ name: string }[]>,
  ): Promise<Set<string>> {
    if (!this.shared) return new Set(names)
    // One order for every process: a statement takes its rows' locks in VALUES order, so two claims
    // of the same names in different orders could each hold what the other waits for (a deadlock).
    const sorted = [...names].sort()
    const ours = new Set<string>()
    for (let i = 0; i < sorted.length; i += CHUNK)
      for (const row of await run(sorted.slice(i, i + CHUNK))) ours.add(row.name)
    return ours
  }
}

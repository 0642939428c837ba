import type { Clock } from '../clock.js'
import type { Db } from '../db/client.js'

/**
 * Single-use token ids, kept in the database so that a token replayed after a restart, or against
 * another Gatehouse process on the same database, is still refused. Consuming is one INSERT: the
 * primary key `(namespace, nonce)` makes the first caller win, atomically, on SQLite and PostgreSQL
 * (`ON CONFLICT DO NOTHING`: a replay inserts nothing).
 */
export class ReplayStore {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  /**
   * Records `nonce` in `namespace` until `expiresAt`. True the first time; false when it was already
   * recorded (a replay). Call only after the token's signature has been checked.
   */
  async consume(namespace: string, nonce: string, expiresAt: Date): Promise<boolean> {
    // One statement, on every authenticated exchange: raw SQL, and no exception for the replay case.
    const inserted = await this.db.hot.execute(
      'INSERT INTO replay_nonce (namespace, nonce, expires_at) VALUES (?, ?, ?) ON CONFLICT (namespace, nonce) DO NOTHING',
      [namespace, nonce, expiresAt],
    )
    return inserted === 1
  }

  /** Deletes entries whose tokens have expired. Returns how many. */
  async prune(): Promise<number> {
    return this.db.hot.execute('DELETE FROM replay_nonce WHERE expires_at < ?', [this.clock.now()])
  }
}

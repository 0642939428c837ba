import type { Clock } from '../clock.js'
import type { Db } from '../db/client.js'

/**
 * Single-use token ids, in the database so a replay after a restart or against another process is
 * still refused: one INSERT … ON CONFLICT DO NOTHING on `(namespace, nonce)`, so the first caller wins.
 */
export class ReplayStore {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  /** Records `nonce` until `expiresAt`: false on a replay. Call only after the signature verified. */
  async consume(namespace: string, nonce: string, expiresAt: Date): Promise<boolean> {
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

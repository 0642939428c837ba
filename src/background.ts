import type { Logger } from './logger.js'

/**
 * In-process background work that must never hold up or fail a request (fan-out, cache warming).
 * Each task has its own try/catch: a failure is logged and forgotten. Durable work belongs in a
 * database outbox, not here; this queue only runs what it is handed while the process lives.
 */
export class BackgroundQueue {
  private readonly pending = new Set<Promise<void>>()
  private closed = false

  constructor(private readonly logger: Logger) {}

  /** Runs `task` soon. Refused (and logged) once the queue is shutting down. */
  add(name: string, task: () => Promise<unknown>): void {
    if (this.closed) {
      this.logger.warn({ task: name }, 'background task refused: shutting down')
      return
    }
    const run = (async () => {
      try {
        await task()
      } catch (err) {
        this.logger.error({ err, task: name }, 'background task failed')
      }
    })()
    this.pending.add(run)
    void run.finally(() => this.pending.delete(run))
  }

  get size(): number {
    return this.pending.size
  }

  /** Resolves once every task, including ones added while waiting, has finished. */
  async processAll(): Promise<void> {
    while (this.pending.size > 0) {
      await Promise.all([...this.pending])
    }
  }

  /** Stops accepting work and waits for what is running. */
  async destroy(): Promise<void> {
    this.closed = true
    await this.processAll()
  }
}

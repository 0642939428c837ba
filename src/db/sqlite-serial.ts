import type {
  SqlDriverAdapter,
  SqlDriverAdapterFactory,
  SqlQuery,
  Transaction,
} from '@prisma/driver-adapter-utils'

/**
 * Serialises access to the one better-sqlite3 connection Prisma's SQLite adapter uses.
 *
 * The adapter takes a mutex for interactive transactions only. A plain query issued while a
 * transaction is open (another request, between two awaits of that transaction) runs on the same
 * connection and so *inside* that transaction: it sees uncommitted rows, and is rolled back with it.
 * This wrapper makes top-level queries wait until no transaction is open, and transactions wait for
 * each other, which is what SQLite's single-writer model means anyway. Work outside Prisma that must
 * not overlap it (hot-sql.ts) runs under the same `gate`.
 */
export function serialiseSqlite(
  inner: SqlDriverAdapterFactory,
  gate: Gate,
): SqlDriverAdapterFactory {
  return {
    provider: inner.provider,
    adapterName: inner.adapterName,
    connect: async () => serialisedAdapter(await inner.connect(), gate),
  }
}

/** A FIFO mutex. */
export class Gate {
  private tail: Promise<void> = Promise.resolve()

  /** Resolves with a release function once every earlier holder has released. */
  acquire(): Promise<() => void> {
    let release!: () => void
    const held = new Promise<void>((r) => (release = r))
    const ready = this.tail.then(() => release)
    this.tail = this.tail.then(() => held)
    return ready
  }

  async run<T>(fn: () => T | Promise<T>): Promise<T> {
    const release = await this.acquire()
    try {
      return await fn()
    } finally {
      release()
    }
  }
}

function serialisedAdapter(adapter: SqlDriverAdapter, gate: Gate): SqlDriverAdapter {
  const wrapped: SqlDriverAdapter = {
    provider: adapter.provider,
    adapterName: adapter.adapterName,
    queryRaw: (q: SqlQuery) => gate.run(() => adapter.queryRaw(q)),
    executeRaw: (q: SqlQuery) => gate.run(() => adapter.executeRaw(q)),
    executeScript: (script: string) => gate.run(() => adapter.executeScript(script)),
    dispose: () => adapter.dispose(),
    async startTransaction(isolationLevel): Promise<Transaction> {
      const release = await gate.acquire()
      let tx: Transaction
      try {
        tx = await adapter.startTransaction(isolationLevel)
      } catch (err) {
        release()
        throw err
      }
      let done = false
      const finish = async (end: () => Promise<void>) => {
        try {
          await end()
        } finally {
          if (!done) {
            done = true
            release()
          }
        }
      }
      return {
        provider: tx.provider,
        adapterName: tx.adapterName,
        options: tx.options,
        queryRaw: (q: SqlQuery) => tx.queryRaw(q),
        executeRaw: (q: SqlQuery) => tx.executeRaw(q),
        commit: () => finish(() => tx.commit()),
        rollback: () => finish(() => tx.rollback()),
      }
    },
  }
  if (adapter.getConnectionInfo) {
    wrapped.getConnectionInfo = () => adapter.getConnectionInfo!()
  }
  return wrapped
}

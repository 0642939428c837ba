import type {
  SqlDriverAdapter,
  SqlDriverAdapterFactory,
  SqlQuery,
  Transaction,
} from '@prisma/driver-adapter-utils'

/**
 * Serialises Prisma's one SQLite connection: its adapter locks only for interactive transactions, so
 * a plain query issued meanwhile would run inside the open transaction (seeing and losing its rows).
 * Queries wait for transactions and transactions for each other; hot-sql.ts shares the `gate`.
 */
export function serialiseSqlite(
  inner: SqlDriverAdapterFactory,
  gate: Gate,
): SqlDriverAdapterFactory {
  return {
    provider: inner.provider,
    adapterName: inner.adapterName,
    connect: async () => serialisedAdapter(beginImmediate(await inner.connect()), gate),
  }
}

/**
 * Prisma's SQLite adapter opens transactions with a deferred BEGIN: one that reads and then writes
 * fails at once with SQLITE_BUSY (no busy wait) if another process wrote in between, as a CLI
 * command beside `gatehouse serve` does. Taking the write lock at BEGIN makes it wait its turn
 * (up to the busy timeout) like the hot SQL's BEGIN IMMEDIATE. In this process the gate already
 * serialises transactions, so nothing here waits longer than before.
 */
function beginImmediate(adapter: SqlDriverAdapter): SqlDriverAdapter {
  const db = (adapter as { client?: { prepare(sql: string): unknown } }).client
  if (typeof db?.prepare !== 'function')
    throw new Error(
      'the Prisma SQLite adapter no longer exposes its connection (see sqlite-serial.ts)',
    )
  const prepare = db.prepare.bind(db)
  db.prepare = (sql: string) => prepare(sql === 'BEGIN' ? 'BEGIN IMMEDIATE' : sql)
  return adapter
}

/** A FIFO mutex. */
export class Gate {
  private tail: Promise<void> = Promise.resolve()

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
      const connection = (
        adapter as { client?: { inTransaction: boolean; exec(sql: string): void } }
      ).client
      return {
        provider: tx.provider,
        adapterName: tx.adapterName,
        options: tx.options,
        queryRaw: (q: SqlQuery) => tx.queryRaw(q),
        executeRaw: (q: SqlQuery) => tx.executeRaw(q),
        commit: () => finish(() => tx.commit()),
        // Prisma sends ROLLBACK itself, but not after a COMMIT that failed (failed-commit.ts), which
        // on SQLite leaves the transaction open on the connection.
        rollback: () =>
          finish(async () => {
            try {
              if (connection?.inTransaction) connection.exec('ROLLBACK')
            } finally {
              await tx.rollback()
            }
          }),
      }
    },
  }
  if (adapter.getConnectionInfo) wrapped.getConnectionInfo = adapter.getConnectionInfo.bind(adapter)
  return wrapped
}

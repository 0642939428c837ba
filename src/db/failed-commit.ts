import type {
  SqlDriverAdapter,
  SqlDriverAdapterFactory,
  SqlQuery,
  Transaction,
} from '@prisma/driver-adapter-utils'

/**
 * Prisma's engine sends COMMIT (and ROLLBACK) as a statement on the adapter's transaction and, when
 * that statement fails (a full disk, a disk gone read-only, a deferred constraint), neither commits
 * nor rolls the transaction back: its connection (SQLite's one, or one of PostgreSQL's pool) is
 * never given back, and the queries after it wait on it for good. This ends such a transaction
 * itself, once.
 */
export function endFailedCommits(inner: SqlDriverAdapterFactory): SqlDriverAdapterFactory {
  return {
    provider: inner.provider,
    adapterName: inner.adapterName,
    connect: async () => wrap(await inner.connect()),
  }
}

function wrap(adapter: SqlDriverAdapter): SqlDriverAdapter {
  const startTransaction = adapter.startTransaction.bind(adapter)
  adapter.startTransaction = async (isolationLevel) => {
    const tx = await startTransaction(isolationLevel)
    let ended = false
    const end = (how: () => Promise<void>) => {
      if (ended) return Promise.resolve()
      ended = true
      return how()
    }
    const wrapped: Transaction = {
      provider: tx.provider,
      adapterName: tx.adapterName,
      options: tx.options,
      queryRaw: (q: SqlQuery) => tx.queryRaw(q),
      async executeRaw(q: SqlQuery) {
        try {
          return await tx.executeRaw(q)
        } catch (err) {
          if (/^\s*(COMMIT|ROLLBACK)\b/i.test(q.sql)) await end(() => tx.rollback()).catch(() => {})
          throw err
        }
      },
      commit: () => end(() => tx.commit()),
      rollback: () => end(() => tx.rollback()),
    }
    return wrapped
  }
  return adapter
}

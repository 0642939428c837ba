/**
 * Storage on SQLite (default) and PostgreSQL (GATEHOUSE_TEST_DATABASE_URL): migrations apply once
 * and refuse tampered or unknown history, transactions are all-or-nothing, unique violations come
 * out as domain-neutral errors, and on SQLite a query outside a transaction never joins one.
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import t from 'tap'
import { loadConfig } from '../../src/config.js'
import { AUTOCHECKPOINT_PAGES, Db, WAL_SIZE_LIMIT_BYTES } from '../../src/db/client.js'
import { UniqueViolationError } from '../../src/db/errors.js'
import { PACKAGE_ROOT } from '../../src/paths.js'
import { migrate, MigrationError, pendingMigrations, readMigrations } from '../../src/db/migrate.js'
import { createTestDatabase } from '../_helpers/db.js'

async function openDb(
  t: { teardown(fn: () => unknown): void; name: string },
  env: Record<string, string> = {},
) {
  const database = await createTestDatabase(t.name)
  t.teardown(() => database.cleanup())
  const { config } = loadConfig({
    GATEHOUSE_DATABASE_URL: database.url,
    GATEHOUSE_DATABASE_POOL_SIZE: '4',
    ...env,
  })
  const applied = await migrate(config.db.kind, config.db.url)
  const db = await Db.open(config.db)
  t.teardown(() => db.close())
  return { db, config, database, applied }
}

const now = () => new Date()

t.test('migrations apply once, then there is nothing to do', async (t) => {
  const { config, applied } = await openDb(t)
  t.same(
    applied,
    readMigrations(config.db.kind).map((m) => m.name),
  )
  t.same(await migrate(config.db.kind, config.db.url), [])
})

t.test('concurrent migrators: one applies, the other finds nothing to do', async (t) => {
  const database = await createTestDatabase('concurrent')
  t.teardown(() => database.cleanup())
  const { config } = loadConfig({ GATEHOUSE_DATABASE_URL: database.url })
  const results = await Promise.all([
    migrate(config.db.kind, config.db.url),
    migrate(config.db.kind, config.db.url),
  ])
  const all = readMigrations(config.db.kind).map((m) => m.name)
  t.same(results.flat().sort(), all.sort(), 'each migration applied exactly once')
})

t.test('history that was edited, or is newer than this release, is refused', async (t) => {
  const all = [{ name: '0001_init', sql: 'x', checksum: 'aaa' }]
  t.same(pendingMigrations(all, []), all)
  t.same(pendingMigrations(all, [{ name: '0001_init', checksum: 'aaa' }]), [])
  t.throws(() => pendingMigrations(all, [{ name: '0001_init', checksum: 'bbb' }]), MigrationError)
  t.throws(
    () => pendingMigrations(all, [{ name: '0002_future', checksum: 'ccc' }]),
    /newer than this release/,
  )
})

t.test(
  'the migration snapshot matches prisma/schema.prisma (no model change without its SQL)',
  async (t) => {
    const schema = readFileSync(join(PACKAGE_ROOT, 'prisma/schema.prisma'), 'utf8')
    const snapshot = readFileSync(
      join(PACKAGE_ROOT, 'prisma/migrations/schema.snapshot.prisma'),
      'utf8',
    )
    t.equal(snapshot, schema, 'run `npm run db:migration -- <name>` after changing the schema')
    t.equal(readMigrations('sqlite').length, readMigrations('postgres').length)
    t.same(
      readMigrations('sqlite').map((m) => m.name),
      readMigrations('postgres').map((m) => m.name),
    )
  },
)

t.test('a transaction that throws leaves nothing written', async (t) => {
  const { db } = await openDb(t)
  await t.rejects(
    db.transact(async (tx) => {
      await tx.instanceMeta.create({ data: { key: 'half', value: '1', updatedAt: now() } })
      throw new Error('changed my mind')
    }),
    /changed my mind/,
  )
  t.equal(await db.prisma.instanceMeta.count({ where: { key: 'half' } }), 0)
})

t.test('a unique violation comes out as UniqueViolationError', async (t) => {
  const { db } = await openDb(t)
  await db.transact((tx) =>
    tx.instanceMeta.create({ data: { key: 'k', value: '1', updatedAt: now() } }),
  )
  await t.rejects(
    db.transact((tx) =>
      tx.instanceMeta.create({ data: { key: 'k', value: '2', updatedAt: now() } }),
    ),
    UniqueViolationError,
  )
})

t.test('a write outside a transaction never joins one that is open', async (t) => {
  const { db } = await openDb(t)
  let releaseTx!: () => void
  const txHeld = new Promise<void>((r) => (releaseTx = r))
  let txStarted!: () => void
  const started = new Promise<void>((r) => (txStarted = r))
  const tx = db
    .transact(async (tx) => {
      await tx.instanceMeta.create({ data: { key: 'inside', value: '1', updatedAt: now() } })
      txStarted()
      await txHeld
      throw new Error('roll back')
    })
    .catch(() => 'rolled back')
  await started
  const outside = db.prisma.instanceMeta.create({
    data: { key: 'outside', value: '1', updatedAt: now() },
  })
  // Give the outside write every chance to run on the shared connection before the rollback.
  await new Promise((r) => setTimeout(r, 50))
  releaseTx()
  t.equal(await tx, 'rolled back')
  await outside
  t.equal(await db.prisma.instanceMeta.count({ where: { key: 'inside' } }), 0)
  t.equal(
    await db.prisma.instanceMeta.count({ where: { key: 'outside' } }),
    1,
    'survived the rollback',
  )
})

t.test('parallel transactions all commit', async (t) => {
  const { db } = await openDb(t)
  await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      db.transact(async (tx) => {
        await tx.instanceMeta.create({ data: { key: `p${i}`, value: String(i), updatedAt: now() } })
        await tx.instanceMeta.findMany()
      }),
    ),
  )
  t.equal(await db.prisma.instanceMeta.count({ where: { key: { startsWith: 'p' } } }), 20)
})

t.test('SQLite runs in WAL mode with foreign keys on', async (t) => {
  const { db } = await openDb(t)
  if (db.kind !== 'sqlite') return t.pass('PostgreSQL: not applicable')
  const mode = await db.prisma.$queryRawUnsafe<{ journal_mode: string }[]>('PRAGMA journal_mode')
  t.equal(mode[0]?.journal_mode, 'wal')
  const fk =
    await db.prisma.$queryRawUnsafe<{ foreign_keys: bigint | number }[]>('PRAGMA foreign_keys')
  t.equal(Number(fk[0]?.foreign_keys), 1)
})

t.test('SQLite commits sync as configured: NORMAL by default, FULL on request', async (t) => {
  const { db, database } = await openDb(t)
  if (db.kind !== 'sqlite') return t.pass('PostgreSQL: not applicable')
  const level = async (d: Db) =>
    Number(
      (await d.prisma.$queryRawUnsafe<{ synchronous: bigint }[]>('PRAGMA synchronous'))[0]
        ?.synchronous,
    )
  t.equal(await level(db), 1, 'NORMAL')
  const { config } = loadConfig({
    GATEHOUSE_DATABASE_URL: database.url,
    GATEHOUSE_SQLITE_SYNCHRONOUS: 'full',
  })
  const full = await Db.open(config.db)
  t.teardown(() => full.close())
  t.equal(await level(full), 2, 'FULL')
})

t.test('hot statements write and read rows exactly as the model API does', async (t) => {
  const { db } = await openDb(t)
  const expires = new Date('2030-01-02T03:04:05.678Z')
  const sql =
    'INSERT INTO replay_nonce (namespace, nonce, expires_at) VALUES (?, ?, ?) ON CONFLICT (namespace, nonce) DO NOTHING'
  t.equal(await db.hot.execute(sql, ['ns', 'n1', expires]), 1, 'first insert changes a row')
  t.equal(await db.hot.execute(sql, ['ns', 'n1', expires]), 0, 'the conflict changes none')
  const row = await db.prisma.replayNonce.findUnique({
    where: { namespace_nonce: { namespace: 'ns', nonce: 'n1' } },
  })
  t.same(row?.expiresAt, expires, 'the date reads back through Prisma unchanged')
  t.equal(
    await db.prisma.replayNonce.count({ where: { expiresAt: { lt: new Date('2030-01-03') } } }),
    1,
    'and compares as a date in model queries',
  )

  await db.prisma.instanceMeta.create({ data: { key: 'k', value: 'v', updatedAt: expires } })
  const rows = await db.hot.query<{ value: string; n: number }>(
    'SELECT value, 7 AS n FROM instance_meta WHERE key = ?',
    ['k'],
  )
  t.same(rows, [{ value: 'v', n: 7 }], 'integers come back as numbers')
  t.same(await db.hot.query('SELECT value FROM instance_meta WHERE key = ?', ['nope']), [])
})

t.test('SQLite checkpoints on its own and cuts a long WAL file back', async (t) => {
  const { db, database } = await openDb(t)
  if (db.kind !== 'sqlite') return t.pass('PostgreSQL: not applicable')
  const file = database.url.slice('file:'.length)
  const { statSync } = await import('node:fs')
  const before = statSync(file).size
  // ~24 MB through the WAL in one transaction: a log far past the size limit.
  const big = 'x'.repeat(4000)
  await db.transact(async (tx) => {
    for (let j = 0; j < 6000; j++)
      await tx.instanceMeta.create({ data: { key: `b${j}`, value: big, updatedAt: now() } })
  })
  t.ok(statSync(`${file}-wal`).size > WAL_SIZE_LIMIT_BYTES, 'the bulk write left a long log')
  for (let i = 0; i < 3; i++) {
    await db.prisma.instanceMeta.create({ data: { key: `s${i}`, value: 'v', updatedAt: now() } })
    await db.hot.execute('INSERT INTO instance_meta (key, value, updated_at) VALUES (?, ?, ?)', [
      `h${i}`,
      'v',
      now(),
    ])
  }
  t.ok(statSync(file).size >= before + 20_000_000, 'a commit copied the log into the database')
  t.ok(statSync(`${file}-wal`).size <= WAL_SIZE_LIMIT_BYTES, 'and the restarted log was cut back')
  for (const [pragma, expected] of [
    ['wal_autocheckpoint', AUTOCHECKPOINT_PAGES],
    ['journal_size_limit', WAL_SIZE_LIMIT_BYTES],
  ] as const) {
    const [row] = await db.prisma.$queryRawUnsafe<Record<string, bigint>[]>(`PRAGMA ${pragma}`)
    t.equal(Number(row?.[pragma]), expected, pragma)
  }
})

t.test('a hot statement waits out another writer, up to the busy timeout', async (t) => {
  const { db, database } = await openDb(t, { GATEHOUSE_SQLITE_BUSY_TIMEOUT_MS: '2000' })
  if (db.kind !== 'sqlite') return t.pass('PostgreSQL: not applicable')
  // Another connection, on a thread of its own (a wait for SQLite's lock holds this thread), keeps
  // the write lock for `ms` milliseconds.
  const holdLock = (ms: number) =>
    new Promise<Worker>((resolve) => {
      const w = new Worker(
        `const { parentPort, workerData } = require('node:worker_threads')
         const db = new (require(workerData.driver))(workerData.file)
         db.exec('BEGIN IMMEDIATE')
         parentPort.postMessage('held')
         setTimeout(() => { db.exec('COMMIT'); db.close() }, workerData.ms)`,
        {
          eval: true,
          workerData: {
            driver: createRequire(import.meta.url).resolve('better-sqlite3'),
            file: database.url.slice('file:'.length),
            ms,
          },
        },
      )
      w.once('message', () => resolve(w))
    })
  const put = 'INSERT INTO instance_meta (key, value, updated_at) VALUES (?, ?, ?)'
  await holdLock(100)
  t.equal(await db.hot.execute(put, ['busy', 'v', now()]), 1, 'written once the lock is free')
  await holdLock(100)
  await db.hot.transaction(async (q) => q.execute(put, ['busy-tx', 'v', now()]))
  t.equal(await db.prisma.instanceMeta.count({ where: { key: { startsWith: 'busy' } } }), 2)
  const held = await holdLock(5000)
  t.teardown(() => held.terminate())
  await t.rejects(db.hot.execute(put, ['never', 'v', now()]), { code: 'SQLITE_BUSY' }, 'gives up')
})

t.test('a hot transaction commits together, or not at all', async (t) => {
  const { db } = await openDb(t)
  const put = 'INSERT INTO instance_meta (key, value, updated_at) VALUES (?, ?, ?)'
  await db.hot.transaction(async (q) => {
    await q.execute(put, ['h1', 'a', now()])
    await q.execute(put, ['h2', 'b', now()])
  })
  t.equal(await db.prisma.instanceMeta.count({ where: { key: { startsWith: 'h' } } }), 2)
  await t.rejects(
    db.hot.transaction(async (q) => {
      await q.execute(put, ['h3', 'c', now()])
      await q.execute(put, ['h1', 'duplicate', now()])
    }),
  )
  t.equal(await db.prisma.instanceMeta.count({ where: { key: 'h3' } }), 0, 'rolled back')
  // The connection is usable afterwards, inside and outside transactions.
  await db.transact((tx) =>
    tx.instanceMeta.create({ data: { key: 'h4', value: 'd', updatedAt: now() } }),
  )
  t.equal(await db.prisma.instanceMeta.count({ where: { key: { startsWith: 'h' } } }), 3)
})

/**
 * Storage on SQLite (default) and PostgreSQL (GATEHOUSE_TEST_DATABASE_URL): migrations apply once
 * and refuse tampered or unknown history, transactions are all-or-nothing, unique violations come
 * out as domain-neutral errors, and on SQLite a query outside a transaction never joins one.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { loadConfig } from '../../src/config.js'
import { Db } from '../../src/db/client.js'
import { UniqueViolationError } from '../../src/db/errors.js'
import { PACKAGE_ROOT } from '../../src/paths.js'
import { migrate, MigrationError, pendingMigrations, readMigrations } from '../../src/db/migrate.js'
import { createTestDatabase } from '../_helpers/db.js'

async function openDb(t: { teardown(fn: () => unknown): void; name: string }) {
  const database = await createTestDatabase(t.name)
  t.teardown(() => database.cleanup())
  const { config } = loadConfig({
    GATEHOUSE_DATABASE_URL: database.url,
    GATEHOUSE_DATABASE_POOL_SIZE: '4',
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

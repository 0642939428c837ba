/**
 * SQLite's checkpoints on a thread (`gatehouse serve`): the WAL reaches the database file without
 * any commit running a checkpoint, SQLite's own checkpoint is left as the log's restart, and a
 * thread that fails hands checkpoints back to SQLite's small inline ones.
 */
import { statSync, unlinkSync } from 'node:fs'
import t, { type Test } from 'tap'
import { loadConfig } from '../../src/config.js'
import { AUTOCHECKPOINT_PAGES, BACKGROUND_AUTOCHECKPOINT_PAGES, Db } from '../../src/db/client.js'
import { sqlitePath } from '../../src/db/locate.js'
import { migrate } from '../../src/db/migrate.js'
import { createTestDatabase } from '../_helpers/db.js'

async function openSqlite(t: Test) {
  const database = await createTestDatabase(t.name, { kind: 'sqlite' })
  t.teardown(() => database.cleanup())
  const { config } = loadConfig({ GATEHOUSE_DATABASE_URL: database.url })
  await migrate(config.db.kind, config.db.url)
  const db = await Db.open(config.db)
  t.teardown(() => db.close())
  return { db, file: sqlitePath(config.db.url) }
}

/** The automatic checkpoint of each connection: Prisma's and the hot statements'. */
async function autocheckpoints(db: Db): Promise<number[]> {
  const [viaPrisma] = await db.prisma.$queryRawUnsafe<{ wal_autocheckpoint: number }[]>(
    'PRAGMA wal_autocheckpoint',
  )
  const [viaHot] = await db.hot.query<{ wal_autocheckpoint: number }>(
    'PRAGMA wal_autocheckpoint',
    [],
  )
  return [Number(viaPrisma!.wal_autocheckpoint), Number(viaHot!.wal_autocheckpoint)]
}

async function until(what: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await what()) return true
    await new Promise((r) => setTimeout(r, 50))
  }
  return what()
}

t.test('the thread copies the WAL into the database file; no commit does', async (t) => {
  const { db, file } = await openSqlite(t)
  t.same(await autocheckpoints(db), [AUTOCHECKPOINT_PAGES, AUTOCHECKPOINT_PAGES], 'inline at first')
  const errors: Error[] = []
  await db.checkpointInBackground((err) => errors.push(err))
  t.same(
    await autocheckpoints(db),
    [BACKGROUND_AUTOCHECKPOINT_PAGES, BACKGROUND_AUTOCHECKPOINT_PAGES],
    "SQLite's own checkpoint now waits for the log's restart size",
  )

  const before = statSync(file).size
  // About 1,500 pages in one commit: far below the restart size, so only the thread copies them.
  const long = 'x'.repeat(1000)
  const at = new Date()
  await db.hot.transaction(async (q) => {
    for (let i = 0; i < 3000; i++)
      await q.execute(
        'INSERT INTO space_member (space, did, "read", "write", updated_at) VALUES (?, ?, ?, ?, ?)',
        ['s', `did:web:${long}${i}`, true, false, at],
      )
  })
  t.ok(statSync(`${file}-wal`).size > 3_000_000, 'the commit went to the WAL')
  t.ok(
    await until(() => statSync(file).size > before + 3_000_000, 5000),
    'the database file holds the rows within a few of the thread’s turns',
  )
  const [check] =
    await db.prisma.$queryRawUnsafe<{ integrity_check: string }[]>('PRAGMA integrity_check')
  t.equal(check?.integrity_check, 'ok', 'SQLite finds the database whole')
  t.equal(await db.prisma.spaceMember.count(), 3000, 'every row is there')
  t.same(errors, [], 'the thread reported nothing')
})

t.test('a thread that fails hands checkpoints back to SQLite', async (t) => {
  const { db, file } = await openSqlite(t)
  // The open connections keep the unlinked file; the thread must not create a new one.
  unlinkSync(file)
  const errors: Error[] = []
  await db.checkpointInBackground((err) => errors.push(err))
  t.ok(
    await until(async () => {
      const pages = await autocheckpoints(db)
      return errors.length > 0 && pages.every((p) => p === AUTOCHECKPOINT_PAGES)
    }, 5000),
    'the failure is told, and the small inline checkpoints are back',
  )
  t.match(errors[0]?.message, /unable to open|no such file|not exist/i, 'the error says why')
  t.notOk(statSync(file, { throwIfNoEntry: false }), 'no empty database was made in its place')
})

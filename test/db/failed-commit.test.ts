/**
 * A transaction whose COMMIT fails (on a full disk or one gone read-only; here a deferred foreign
 * key, which fails at COMMIT on both databases) is rolled back and lets go of the connection: the
 * queries and transactions after it run, rather than waiting for good on the failed one's locks.
 */
import t from 'tap'
import { TestArbiter } from '../_helpers/arbiter.js'

/** `p`, or a rejection once `ms` have passed (what would otherwise be a hang until tap's timeout). */
function within<T>(p: Promise<T>, ms = 5000): Promise<T> {
  return Promise.race([
    p,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms)),
  ])
}

t.test('after COMMITs that fail, the database still answers', async (t) => {
  const a = await TestArbiter.create(t)
  const db = a.ctx.db
  await db.prisma.$executeRawUnsafe('CREATE TABLE fault_parent (id INTEGER PRIMARY KEY)')
  await db.prisma.$executeRawUnsafe(
    'CREATE TABLE fault_child (parent INTEGER REFERENCES fault_parent (id) DEFERRABLE INITIALLY DEFERRED)',
  )
  // More failures than a PostgreSQL pool has connections, so a leaked one would show as well.
  for (let i = 0; i < 6; i++) {
    await t.rejects(
      within(
        db.transact((tx) => tx.$executeRawUnsafe('INSERT INTO fault_child (parent) VALUES (1)')),
      ),
      `failed COMMIT ${i + 1} is an error`,
    )
  }
  t.same(
    await within(db.prisma.$queryRawUnsafe('SELECT COUNT(*) AS n FROM fault_child')),
    [{ n: 0n }],
    'a query runs, and sees nothing of them',
  )
  t.same(await within(db.hot.query('SELECT 1 AS one', [])), [{ one: 1 }], 'so does hot SQL')
  await within(
    db.transact(async (tx) => {
      await tx.$executeRawUnsafe('INSERT INTO fault_parent (id) VALUES (1)')
      await tx.$executeRawUnsafe('INSERT INTO fault_child (parent) VALUES (1)')
    }),
  )
  t.pass('and a transaction commits')
})

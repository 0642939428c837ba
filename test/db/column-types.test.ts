/**
 * Every column type the schema uses (String, String?, Int, Boolean, DateTime, DateTime?, Bytes,
 * Bytes?) round-trips between the two ways Gatehouse reaches a table: rows written with hot SQL
 * (db.hot) read back through Prisma's model API with the same values, and rows written through the
 * model API read back through hot SQL typed the same (booleans, Dates, bytes), on SQLite and, with
 * GATEHOUSE_TEST_DATABASE_URL, on PostgreSQL.
 */
import t from 'tap'
import { loadConfig } from '../../src/config.js'
import { Db } from '../../src/db/client.js'
import { migrate } from '../../src/db/migrate.js'
import { createTestDatabase } from '../_helpers/db.js'

async function openDb(t: { teardown(fn: () => unknown): void; name: string }) {
  const database = await createTestDatabase(t.name)
  t.teardown(() => database.cleanup())
  const { config } = loadConfig({ GATEHOUSE_DATABASE_URL: database.url })
  await migrate(config.db.kind, config.db.url)
  const db = await Db.open(config.db)
  t.teardown(() => db.close())
  return db
}

const at = new Date('2031-02-03T04:05:06.789Z')
const later = new Date('2031-02-03T04:05:06.790Z')
const bytes = Uint8Array.from([0, 1, 127, 128, 255])
const bytes2 = Uint8Array.from([9, 8, 7])

const b = (v: Uint8Array | null | undefined) => (v ? Buffer.from(v).toString('hex') : v)

t.test('hot SQL writes, the model API reads the same values', async (t) => {
  const db = await openDb(t)
  await db.hot.execute(
    'INSERT INTO space_member (space, did, "read", "write", updated_at) VALUES (?, ?, ?, ?, ?)',
    ['s', 'did:a', true, false, at],
  )
  const m = await db.prisma.spaceMember.findUnique({
    where: { space_did: { space: 's', did: 'did:a' } },
  })
  t.same(m, { space: 's', did: 'did:a', read: true, write: false, updatedAt: at }, 'booleans')
  t.equal(
    await db.prisma.spaceMember.count({ where: { read: true, write: false, updatedAt: at } }),
    1,
    'and the model API filters on them as written',
  )

  const insertEvent =
    'INSERT INTO space_event (space, space_rev, kind, repo, repo_rev, hash, prev_space_rev, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'
  await db.hot.execute(insertEvent, ['s', 'r1', 'write', 'did:a', 'x', bytes, null, at])
  await db.hot.execute(insertEvent, ['s', 'r2', 'deleted', null, null, null, 'r1', later])
  const events = await db.prisma.spaceEvent.findMany({ orderBy: { spaceRev: 'asc' } })
  t.same(
    events.map((e) => ({ ...e, hash: b(e.hash) })),
    [
      {
        space: 's',
        spaceRev: 'r1',
        kind: 'write',
        repo: 'did:a',
        repoRev: 'x',
        hash: b(bytes),
        prevSpaceRev: null,
        createdAt: at,
      },
      {
        space: 's',
        spaceRev: 'r2',
        kind: 'deleted',
        repo: null,
        repoRev: null,
        hash: null,
        prevSpaceRev: 'r1',
        createdAt: later,
      },
    ],
    'strings, nullable strings and bytes, a date a millisecond later',
  )
  t.equal(
    await db.prisma.spaceEvent.count({ where: { createdAt: { gt: at } } }),
    1,
    'dates compare',
  )

  await db.hot.execute(
    'INSERT INTO member_state (space, rev, lthash, count, compacted_through, updated_at) VALUES (?, ?, ?, ?, ?, ?)',
    ['s', 'r1', bytes, 2_000_000_000, null, at],
  )
  const state = await db.prisma.memberState.findUnique({ where: { space: 's' } })
  t.same(
    { ...state, lthash: b(state?.lthash) },
    {
      space: 's',
      rev: 'r1',
      lthash: b(bytes),
      count: 2_000_000_000,
      compactedThrough: null,
      updatedAt: at,
    },
    'ints',
  )

  await db.hot.execute(
    `INSERT INTO space (uri, authority_did, space_type, skey, read_policy, write_policy, app_access,
       credential_ttl_sec, created_at, updated_at, deleted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ['ats://x', 'did:web:a', 't', 'k', 'public', 'public', 'open', 600, at, at, later],
  )
  const space = await db.prisma.space.findUnique({ where: { uri: 'ats://x' } })
  t.same(space?.deletedAt, later, 'nullable dates')
  t.equal(space?.credentialTtlSec, 600)
  t.equal(space?.readManagingApp, null)
})

t.test('the model API writes, hot SQL reads the same values, typed alike', async (t) => {
  const db = await openDb(t)
  await db.prisma.spaceMember.createMany({
    data: [
      { space: 's', did: 'did:a', read: true, write: false, updatedAt: at },
      { space: 's', did: 'did:b', read: false, write: true, updatedAt: later },
    ],
  })
  t.same(
    await db.hot.query(
      'SELECT did, "read", "write", updated_at FROM space_member WHERE space = ? ORDER BY did',
      ['s'],
    ),
    [
      { did: 'did:a', read: true, write: false, updated_at: at },
      { did: 'did:b', read: false, write: true, updated_at: later },
    ],
    'booleans as booleans, dates as Dates',
  )
  t.same(
    await db.hot.query('SELECT did FROM space_member WHERE "read" = ? AND updated_at = ?', [
      true,
      at,
    ]),
    [{ did: 'did:a' }],
    'and hot SQL filters on them as the model API wrote them',
  )

  await db.prisma.spaceEvent.create({
    data: {
      space: 's',
      spaceRev: 'r1',
      kind: 'write',
      repo: 'did:a',
      repoRev: 'x',
      hash: Buffer.from(bytes),
      createdAt: at,
    },
  })
  await db.prisma.spaceEvent.create({
    data: { space: 's', spaceRev: 'r2', kind: 'deleted', prevSpaceRev: 'r1', createdAt: later },
  })
  const events = await db.hot.query<Record<string, unknown>>(
    'SELECT space_rev, repo, hash, prev_space_rev, created_at FROM space_event WHERE space = ? ORDER BY space_rev',
    ['s'],
  )
  t.same(
    events.map((e) => ({ ...e, hash: b(e.hash as Uint8Array | null) })),
    [
      { space_rev: 'r1', repo: 'did:a', hash: b(bytes), prev_space_rev: null, created_at: at },
      { space_rev: 'r2', repo: null, hash: null, prev_space_rev: 'r1', created_at: later },
    ],
  )
  t.ok(events[0]!.hash === null || events[0]!.hash instanceof Uint8Array)

  await db.prisma.memberState.create({
    data: {
      space: 's',
      rev: 'r1',
      lthash: Buffer.from(bytes2),
      count: 7,
      compactedThrough: 'r0',
      updatedAt: at,
    },
  })
  const [state] = await db.hot.query<{
    lthash: Uint8Array
    count: number
    compacted_through: string
  }>('SELECT lthash, count, compacted_through FROM member_state WHERE space = ?', ['s'])
  t.same(
    { ...state, lthash: b(state?.lthash) },
    { lthash: b(bytes2), count: 7, compacted_through: 'r0' },
  )
  t.equal(typeof state?.count, 'number', 'an Int column is a number')

  await db.prisma.space.create({
    data: {
      uri: 'ats://x',
      authorityDid: 'did:web:a',
      spaceType: 't',
      skey: 'k',
      readPolicy: 'public',
      writePolicy: 'public',
      appAccess: 'open',
      credentialTtlSec: 600,
      createdAt: at,
      updatedAt: at,
    },
  })
  t.same(
    await db.hot.query(
      'SELECT credential_ttl_sec, read_managing_app, deleted_at FROM space WHERE uri = ?',
      ['ats://x'],
    ),
    [{ credential_ttl_sec: 600, read_managing_app: null, deleted_at: null }],
    'nulls stay null',
  )
})

t.test(
  'inside a Prisma transaction (db.in) the same statements read and write as on db.hot',
  async (t) => {
    const db = await openDb(t)
    const insertMember =
      'INSERT INTO space_member (space, did, "read", "write", updated_at) VALUES (?, ?, ?, ?, ?)'
    const insertState =
      'INSERT INTO member_state (space, rev, lthash, count, compacted_through, updated_at) VALUES (?, ?, ?, ?, ?, ?)'
    await db.hot.execute(insertMember, ['s', 'did:a', true, false, at])
    await db.hot.execute(insertState, ['s', 'r1', bytes, 2_000_000_000, null, at])
    await db.transact(async (tx) => {
      const q = db.in(tx)
      t.equal(await q.execute(insertMember, ['s', 'did:b', false, true, later]), 1, 'row counts')
      await q.execute(insertState, ['t', 'r2', bytes2, 7, 'r0', later])
    })
    const members = 'SELECT did, "read", "write", updated_at FROM space_member ORDER BY did'
    const states =
      'SELECT space, rev, lthash, count, compacted_through, updated_at FROM member_state ORDER BY space'
    const hex = (rows: Record<string, unknown>[]) =>
      rows.map((r) => ({ ...r, lthash: b(r.lthash as Uint8Array | undefined) }))
    const expectedMembers = [
      { did: 'did:a', read: true, write: false, updated_at: at },
      { did: 'did:b', read: false, write: true, updated_at: later },
    ]
    const expectedStates = [
      {
        space: 's',
        rev: 'r1',
        lthash: b(bytes),
        count: 2_000_000_000,
        compacted_through: null,
        updated_at: at,
      },
      {
        space: 't',
        rev: 'r2',
        lthash: b(bytes2),
        count: 7,
        compacted_through: 'r0',
        updated_at: later,
      },
    ]
    t.same(await db.hot.query(members, []), expectedMembers, 'db.hot reads both writes')
    t.same(hex(await db.hot.query(states, [])), expectedStates)
    await db.transact(async (tx) => {
      const q = db.in(tx)
      t.same(await q.query(members, []), expectedMembers, 'db.in(tx) reads both, typed alike')
      t.same(hex(await q.query(states, [])), expectedStates)
      const [state] = await q.query<{ count: unknown; lthash: unknown }>(states, [])
      t.equal(typeof state?.count, 'number', 'an Int column is a number')
      t.ok(state?.lthash instanceof Uint8Array, 'bytes are bytes')
      t.same(
        await q.query('SELECT did FROM space_member WHERE "read" = ? AND updated_at = ?', [
          true,
          at,
        ]),
        [{ did: 'did:a' }],
        'and filters on what db.hot wrote',
      )
    })
    t.same(
      await db.hot.query('SELECT did FROM space_member WHERE "write" = ? AND updated_at = ?', [
        true,
        later,
      ]),
      [{ did: 'did:b' }],
      'db.hot filters on what db.in(tx) wrote',
    )
    await t.rejects(
      db.transact(async (tx) => {
        await db.in(tx).execute(insertMember, ['s', 'did:c', true, true, at])
        throw new Error('rolled back')
      }),
      /rolled back/,
    )
    t.same(
      await db.hot.query('SELECT did FROM space_member WHERE did = ?', ['did:c']),
      [],
      'a failed transaction leaves nothing of its db.in(tx) statements',
    )
  },
)

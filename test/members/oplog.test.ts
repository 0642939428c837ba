/**
 * The member oplog and its digest, on SQLite and (in CI) PostgreSQL: every change appends one op in
 * the member table's transaction; replaying the oplog reproduces the table and the digest exactly,
 * also after many concurrent writers on the same member; compaction makes old `since`s resync.
 */
import t from 'tap'
import { sha256 } from '@noble/hashes/sha2.js'
import { LtHash } from '../../src/crypto/lthash.js'
import { hex } from '../_helpers/hex.js'
import {
  memberElement,
  OplogCompactedError,
  type MemberOpView,
} from '../../src/members/member-list.js'
import { decodeTid } from '../../src/spaces/tid.js'
import { TestArbiter } from '../_helpers/arbiter.js'
import { MEMBERS_ONLY, slugOf } from '../_helpers/spaces.js'

async function world(t: Parameters<typeof TestArbiter.create>[0] & { name?: string }) {
  const a = await TestArbiter.create(t)
  const space = (
    await a.ctx.spaces.create({
      authority: 'did:web:authority.example',
      spaceType: 'com.example.forum',
      skey: slugOf(t),
      ...MEMBERS_ONLY,
    })
  ).uri
  return { a, space, members: a.ctx.spaces.members }
}

async function allOps(members: Awaited<ReturnType<typeof world>>['members'], space: string) {
  const out: MemberOpView[] = []
  let since: string | undefined
  for (;;) {
    const page = await members.ops(space, since, 7)
    out.push(...page.ops)
    if (page.ops.length < 7) return { ops: out, state: page.state }
    since = page.ops[page.ops.length - 1]!.rev
  }
}

/** What a mirror does: apply the ops in order, keep the set and its LtHash. */
function replay(ops: MemberOpView[]) {
  const table = new Map<string, { read: boolean; write: boolean }>()
  const hash = new LtHash()
  for (const op of ops) {
    const before = table.get(op.did)
    if (before) hash.remove(memberElement(op.did, before))
    if (op.op === 'remove') table.delete(op.did)
    else {
      table.set(op.did, { read: op.read, write: op.write })
      hash.add(memberElement(op.did, op))
    }
  }
  return { table, digest: hex(hash.digest()) }
}

async function table(a: TestArbiter, space: string) {
  const rows = await a.ctx.db.prisma.spaceMember.findMany({
    where: { space },
    orderBy: { did: 'asc' },
  })
  return new Map(rows.map((r) => [r.did, { read: r.read, write: r.write }]))
}

t.test('adds, flag changes and removals append ops; the digest follows the set', async (t) => {
  const { a, space, members } = await world(t)
  const empty = await members.state(space)
  t.same(empty, { rev: undefined, digest: sha256(new LtHash().state()), count: 0 })
  await a.ctx.spaces.putMember(space, 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa', {
    read: true,
    write: true,
  })
  await a.ctx.spaces.putMember(space, 'did:plc:bbbbbbbbbbbbbbbbbbbbbbbb', {
    read: true,
    write: false,
  })
  await a.ctx.spaces.putMember(space, 'did:plc:bbbbbbbbbbbbbbbbbbbbbbbb', {
    read: true,
    write: false,
  })
  await a.ctx.spaces.putMember(space, 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa', {
    read: false,
    write: true,
  })
  await a.ctx.spaces.removeMember(space, 'did:plc:bbbbbbbbbbbbbbbbbbbbbbbb')
  await a.ctx.spaces.removeMember(space, 'did:plc:cccccccccccccccccccccccc')
  const { ops, state } = await allOps(members, space)
  t.same(
    ops.map((o) => [o.op, o.did.slice(-1), o.read, o.write]),
    [
      ['add', 'a', true, true],
      ['add', 'b', true, false],
      ['update', 'a', false, true],
      ['remove', 'b', false, false],
    ],
    'no-op writes append nothing',
  )
  t.ok(
    ops.every((o, i) => i === 0 || o.rev > ops[i - 1]!.rev),
    'revs strictly increase',
  )
  t.equal(state.rev, ops[ops.length - 1]!.rev)
  t.equal(state.count, 1)
  const expected = new LtHash().add(
    memberElement('did:plc:aaaaaaaaaaaaaaaaaaaaaaaa', { read: false, write: true }),
  )
  t.equal(hex(state.digest), hex(expected.digest()), 'digest of the current set')
  t.equal(replay(ops).digest, hex(state.digest))
})

t.test(
  'concurrent writers on one member: no lost update, and replay reproduces table and digest',
  async (t) => {
    const { a, space, members } = await world(t)
    const dids = [
      'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa',
      'did:plc:bbbbbbbbbbbbbbbbbbbbbbbb',
      'did:plc:cccccccccccccccccccccccc',
    ]
    await Promise.all(
      Array.from({ length: 60 }, (_, i) => {
        const did = dids[i % dids.length]!
        return i % 7 === 3
          ? a.ctx.spaces.removeMember(space, did)
          : a.ctx.spaces.putMember(space, did, { read: i % 2 === 0, write: i % 3 === 0 })
      }),
    )
    const { ops, state } = await allOps(members, space)
    const replayed = replay(ops)
    t.same(replayed.table, await table(a, space), 'the table is the oplog replayed')
    t.equal(replayed.digest, hex(state.digest), 'and so is the digest')
    t.equal(state.count, replayed.table.size)
    t.equal(new Set(ops.map((o) => o.rev)).size, ops.length, 'no two ops share a rev')
  },
)

t.test('revs are TIDs that keep increasing even when the clock stands still', async (t) => {
  const { a, space, members } = await world(t)
  for (let i = 0; i < 5; i++)
    await a.ctx.spaces.putMember(space, `did:plc:${String(i).repeat(24)}`, {
      read: true,
      write: true,
    })
  const { ops } = await allOps(members, space)
  const micros = ops.map((o) => decodeTid(o.rev).micros)
  t.ok(micros.every((m, i) => i === 0 || m > micros[i - 1]!))
  t.ok(micros[0]! >= BigInt(a.clock.nowMs()) * 1000n)
})

t.test(
  'compaction: old ops go; a since from before them must resync; later ones still work',
  async (t) => {
    const { a, space, members } = await world(t)
    await a.ctx.spaces.putMember(space, 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa', {
      read: true,
      write: true,
    })
    await a.ctx.spaces.putMember(space, 'did:plc:bbbbbbbbbbbbbbbbbbbbbbbb', {
      read: true,
      write: true,
    })
    const firstTwo = (await allOps(members, space)).ops
    a.clock.advance(60_000)
    await a.ctx.spaces.putMember(space, 'did:plc:cccccccccccccccccccccccc', {
      read: true,
      write: true,
    })
    t.equal(await members.compact(space, new Date(a.clock.nowMs() - 30_000)), 2)
    await t.rejects(members.ops(space, undefined, 10), OplogCompactedError)
    await t.rejects(members.ops(space, firstTwo[0]!.rev, 10), OplogCompactedError)
    const after = await members.ops(space, firstTwo[1]!.rev, 10)
    t.same(
      after.ops.map((o) => o.did.slice(-1)),
      ['c'],
    )
    t.equal(after.state.count, 3, 'the state is unaffected')
  },
)

t.test('compactAll finds every space with history older than the window', async (t) => {
  const { a, space, members } = await world(t)
  const other = (
    await a.ctx.spaces.create({
      authority: 'did:web:authority.example',
      spaceType: 'com.example.forum',
      skey: 'other',
      ...MEMBERS_ONLY,
    })
  ).uri
  await a.ctx.spaces.putMember(space, 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa', {
    read: true,
    write: true,
  })
  await a.ctx.spaces.putMember(other, 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa', {
    read: true,
    write: true,
  })
  a.clock.advance(31 * 86_400_000)
  await a.ctx.spaces.putMember(space, 'did:plc:bbbbbbbbbbbbbbbbbbbbbbbb', {
    read: true,
    write: true,
  })
  t.equal(await members.compactAll(new Date(a.clock.nowMs() - 30 * 86_400_000)), 2)
  t.equal(
    (
      await members.ops(
        space,
        (await a.ctx.db.prisma.memberState.findUnique({ where: { space } }))!.compactedThrough!,
        10,
      )
    ).ops.length,
    1,
  )
  t.equal(
    await members.compactAll(new Date(a.clock.nowMs() - 30 * 86_400_000)),
    0,
    'nothing left to do',
  )
})

t.test('deleting the space drops the list and its history; re-creating starts fresh', async (t) => {
  const { a, space, members } = await world(t)
  await a.ctx.spaces.putMember(space, 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa', {
    read: true,
    write: true,
  })
  await a.ctx.spaces.delete(space)
  await a.ctx.spaces.create({
    authority: 'did:web:authority.example',
    spaceType: 'com.example.forum',
    skey: space.split('/').pop()!,
    ...MEMBERS_ONLY,
  })
  t.same((await members.ops(space, undefined, 10)).ops, [])
  t.equal((await members.state(space)).count, 0)
  t.equal(
    await a.ctx.spaces.members.isMember(space, 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa', 'read'),
    false,
  )
})

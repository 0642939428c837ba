/**
 * Bulk member import and export as JSON lines over HTTP: streamed, taken in batches of 1000 and
 * committed in short transactions with their oplog entries, giving every other request a turn
 * between them; idempotent, refusing bad lines by number, revoking read it takes away; the export
 * streams the list back in the import's format.
 */
import t from 'tap'
import { IMPORT_SLICE } from '../../src/spaces/space-service.js'
import {
  decodeToken,
  memberDigestMatches,
  spaceWorld,
  type SpaceWorld,
} from '../_helpers/spaces.js'
import { serviceJwt } from '../_helpers/tokens.js'
import type { WebIdentity } from '../_helpers/identities.js'

const did = (i: number) => `did:plc:${String(i).padStart(24, 'x')}`

async function setup(t: Parameters<typeof spaceWorld>[0]) {
  const w = await spaceWorld(t)
  const admin = w.user('admin')
  await w.a.ctx.managers.change(w.authority.did, admin.did, 'admin', 'operator')
  const post = async (who: WebIdentity, lines: string | AsyncIterable<string>) => {
    const nsid = 'dev.gatehouse.simplespace.importMembers'
    const body = typeof lines === 'string' ? lines : ReadableStreamFrom(lines)
    const res = await w.a.fetch(`/xrpc/${nsid}?${new URLSearchParams({ space: w.space })}`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${serviceJwt({ iss: who, aud: w.authority.did, lxm: nsid, nowSec: w.now() })}`,
        'content-type': 'application/x-ndjson',
      },
      body,
      ...(typeof lines === 'string' ? {} : { duplex: 'half' }),
    } as RequestInit)
    return { status: res.status, body: (await res.json()) as Record<string, unknown> }
  }
  const exportAll = async (who: WebIdentity) => {
    const nsid = 'dev.gatehouse.simplespace.exportMembers'
    const res = await w.a.fetch(`/xrpc/${nsid}?${new URLSearchParams({ space: w.space })}`, {
      headers: {
        authorization: `Bearer ${serviceJwt({ iss: who, aud: w.authority.did, lxm: nsid, nowSec: w.now() })}`,
      },
    })
    return { status: res.status, type: res.headers.get('content-type'), text: await res.text() }
  }
  return { w, admin, post, exportAll }
}

function ReadableStreamFrom(lines: AsyncIterable<string>): ReadableStream<Uint8Array> {
  const it = lines[Symbol.asyncIterator]()
  const enc = new TextEncoder()
  return new ReadableStream({
    async pull(controller) {
      const { value, done } = await it.next()
      if (done) controller.close()
      else controller.enqueue(enc.encode(value))
    },
  })
}

const digestMatches = (w: SpaceWorld) => memberDigestMatches(w.a.ctx, w.space)

t.test(
  'a streamed import of 2,500 members commits in batches; a second run changes nothing',
  async (t) => {
    const { w, admin, post } = await setup(t)
    async function* lines() {
      for (let i = 0; i < 2500; i++)
        yield `${JSON.stringify({ did: did(i), read: true, write: i % 2 === 0 })}\n`
    }
    t.same(await post(admin, lines()), {
      status: 200,
      body: { received: 2500, changed: 2500, unchanged: 0, batches: 3 },
    })
    t.equal((await w.a.ctx.spaces.members.state(w.space)).count, 2500)
    t.ok(await digestMatches(w), 'digest matches the table')
    const again = await post(admin, lines())
    t.same(again.body, { received: 2500, changed: 0, unchanged: 2500, batches: 3 }, 'idempotent')
    const ops = await w.a.ctx.db.prisma.memberOp.count({ where: { space: w.space } })
    t.equal(ops, 2500, 'one oplog entry per change, none for the repeat')
  },
)

t.test('updates and removals in an import; the last line for a DID wins', async (t) => {
  const { w, admin, post } = await setup(t)
  await post(
    admin,
    [0, 1, 2].map((i) => JSON.stringify({ did: did(i), read: true, write: true })).join('\n'),
  )
  const res = await post(
    admin,
    [
      { did: did(0), remove: true },
      { did: did(1), read: false, write: true },
      { did: did(3), read: true, write: true },
      { did: did(3), read: true, write: false },
    ]
      .map((l) => JSON.stringify(l))
      .join('\n') + '\n\n',
  )
  t.same(res.body, { received: 4, changed: 3, unchanged: 1, batches: 1 })
  const rows = await w.a.ctx.db.prisma.spaceMember.findMany({
    where: { space: w.space },
    orderBy: { did: 'asc' },
  })
  t.same(
    rows.map((r) => [r.did, r.read, r.write]),
    [
      [did(1), false, true],
      [did(2), true, true],
      [did(3), true, false],
    ],
  )
  t.ok(await digestMatches(w))
})

t.test('bad lines are refused by number; earlier batches stay; admins only', async (t) => {
  const { w, admin, post } = await setup(t)
  const good = Array.from({ length: 1000 }, (_, i) =>
    JSON.stringify({ did: did(i), read: true, write: true }),
  )
  const res = await post(admin, [...good, '{"did":"nope","read":true,"write":true}'].join('\n'))
  t.match(res, { status: 400, body: { error: 'InvalidRequest', message: /^line 1001:/ } })
  t.equal(
    (await w.a.ctx.spaces.members.state(w.space)).count,
    1000,
    'the full first batch was committed',
  )
  t.match(await post(admin, '{"did":'), { status: 400, body: { message: /line 1 is not JSON/ } })
  t.match(await post(admin, `{"did":"${'x'.repeat(5000)}"}`), {
    status: 400,
    body: { message: /too long/ },
  })
  const mod = w.user('mod')
  await w.a.ctx.managers.change(w.authority.did, mod.did, 'moderator', 'operator')
  t.match(await post(mod, good[0]!), { status: 400, body: { error: 'NotSpaceOwner' } })
})

t.test('an import that takes read away revokes the live credentials', async (t) => {
  const { w, admin, post } = await setup(t)
  const alice = w.user('alice')
  await w.a.ctx.spaces.putMember(w.space, alice.did, { read: true, write: true })
  const cred = await w.getCredential(alice)
  await post(admin, JSON.stringify({ did: alice.did, read: false, write: true }))
  t.match(await w.getSpace(cred.body.credential as string, cred.holder), {
    status: 401,
    body: { error: 'CredentialRevoked' },
  })
  const issued = await w.a.ctx.db.prisma.issuedCredential.findFirst({
    where: { jti: decodeToken(cred.body.credential as string).payload.jti as string },
  })
  t.ok(issued?.revokedAt)
})

t.test('export streams the list back in the import format', async (t) => {
  const { w, admin, post, exportAll } = await setup(t)
  const lines = Array.from({ length: 1200 }, (_, i) =>
    JSON.stringify({ did: did(i), read: i % 3 === 0, write: true }),
  )
  await post(admin, lines.join('\n'))
  const out = await exportAll(admin)
  t.equal(out.status, 200)
  t.equal(out.type, 'application/x-ndjson')
  t.same(out.text.trim().split('\n'), [...lines].sort())
  t.match(await exportAll(w.user('stranger')), { status: 400 })
})

t.test(
  'a large import holds the database in short transactions and lets other requests in between them',
  async (t) => {
    const { w, admin, post } = await setup(t)
    // Every transaction the import makes, and what else ran between them: a macrotask scheduled
    // in a transaction runs before the next one only if the import gives the event loop a turn.
    const members = w.a.ctx.spaces.members
    const applyBatch = members.applyBatch.bind(members)
    const sizes: number[] = []
    const log: ('tx' | 'turn' | 'answered')[] = []
    let health: Promise<unknown> | undefined
    members.applyBatch = (q, space, entries) => {
      if (space === w.space) {
        sizes.push(entries.length)
        log.push('tx')
        setImmediate(() => log.push('turn'))
        // A request that arrives while the import runs.
        health ??= w.a.fetch('/xrpc/_health').then(async (r) => {
          await r.arrayBuffer()
          log.push('answered')
        })
      }
      return applyBatch(q, space, entries)
    }
    t.teardown(() => void (members.applyBatch = applyBatch))
    const lines = Array.from({ length: 10_000 }, (_, i) =>
      JSON.stringify({ did: did(i), read: true, write: i % 2 === 0 }),
    )
    t.same(await post(admin, lines.join('\n')), {
      status: 200,
      body: { received: 10_000, changed: 10_000, unchanged: 0, batches: 10 },
    })
    await health
    t.ok(
      Math.max(...sizes) <= IMPORT_SLICE,
      `no transaction writes more than ${IMPORT_SLICE} members (largest: ${Math.max(...sizes)})`,
    )
    t.equal(
      sizes.reduce((a, b) => a + b, 0),
      10_000,
    )
    const txs = log.flatMap((e, i) => (e === 'tx' ? [i] : []))
    const back2back = txs.filter(
      (at, k) => k > 0 && !log.slice(txs[k - 1]! + 1, at).includes('turn'),
    )
    t.same(back2back, [], 'the event loop turned between every two transactions')
    t.ok(
      log.indexOf('answered') < txs[txs.length - 1]!,
      'a request sent during the import was answered before the import ended',
    )
    t.ok(await digestMatches(w), 'digest matches the table')
  },
)

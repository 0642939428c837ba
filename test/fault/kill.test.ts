/**
 * SIGKILL of `gatehouse serve` in the middle of a stream of notifyWrites, a stream of credential
 * exchanges, a bulk member import and deliveries to a syncer, then a restart on the same database:
 * every write the server acknowledged (200) is in the writer set and spaceRevs stay strictly
 * increasing across the crash; every credential it issued is on record (revocable) and its
 * delegation token stays spent; an import acknowledged before is whole and the one cut off is
 * committed in whole slices with its oplog and digest agreeing, and completes when sent again; the
 * syncer gets every acknowledged write, in order, once the new process runs (at least once: what
 * was sent but not yet recorded comes again). SQLite here, PostgreSQL in CI's PostgreSQL leg.
 */
import t from 'tap'
import { encodeTid } from '../../src/spaces/tid.js'
import { IMPORT_SLICE } from '../../src/spaces/space-service.js'
import { IMPORT_BATCH } from '../../src/spaces/manager.js'
import { processWorld } from '../_helpers/db.js'
import type { WebIdentity } from '../_helpers/identities.js'
import { serveEnv, startServe } from '../_helpers/serve.js'
import { MockService } from '../_helpers/services.js'
import {
  decodeToken,
  exchangeAt,
  MEMBERS_ONLY,
  memberDigestMatches,
  sideWorld,
} from '../_helpers/spaces.js'
import { postNotifyWrite } from '../_helpers/sync.js'
import { presentHeaders, serviceJwt } from '../_helpers/tokens.js'
import type { Keypair } from '../../src/crypto/keypair.js'

const WRITERS = 10
const READERS = 4
const IMPORT = 'dev.gatehouse.simplespace.importMembers'
/** Members of the import acknowledged before the kill. */
const FIRST_IMPORT = 500

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const nowSec = () => Math.floor(Date.now() / 1000)
const memberDid = (i: number) => `did:plc:${String(i).padStart(24, 'k')}`
const importLine = (i: number) =>
  `${JSON.stringify({ did: memberDid(i), read: true, write: false })}\n`

type Notification = { repo: string; repoRev: string; spaceRev: string; prevSpaceRev?: string }

t.test('a SIGKILL in the middle of the work loses nothing acknowledged', async (t) => {
  const { dataDir, db } = await processWorld(t, 'kill')
  // The restarted process takes the killed one's relay leases over once they expire (PostgreSQL).
  const env = serveEnv(dataDir, db.url, {
    GATEHOUSE_RELAY_RETRY_BASE_MS: '50',
    GATEHOUSE_LEASE_SEC: '2',
  })
  const first = await startServe(t, env)

  const { ctx, web, authority, space } = await sideWorld(t, env, 'kill')
  const writers = Array.from({ length: WRITERS }, (_, i) => web.create(`writer${i}`))
  for (const w of writers) await ctx.spaces.putMember(space, w.did, { read: true, write: true })
  const readers = Array.from({ length: READERS }, (_, i) => web.create(`reader${i}`))
  for (const r of readers) await ctx.spaces.putMember(space, r.did, { read: true, write: false })
  const admin = web.create('admin')
  await ctx.managers.change(authority.did, admin.did, 'admin', 'operator')
  const imported = (
    await ctx.spaces.create({
      authority: authority.did,
      spaceType: 'com.example.forum',
      skey: 'kill-import',
      ...MEMBERS_ONLY,
    })
  ).uri

  // A syncer slow to answer until the restart, so deliveries are pending when the kill comes.
  let slow = true
  const received: Notification[] = []
  const syncer = await MockService.start(t, async (req, res) => {
    if (slow) await sleep(20)
    received.push(req.body as Notification)
    syncer.json(res, 200, {})
  })
  const syncerId = web.create('syncer', {
    services: { atproto_space_syncer: { type: 'AtprotoSpaceSyncer', endpoint: syncer.origin } },
  })
  await ctx.notify.register(
    space,
    `${syncerId.did}#atproto_space_syncer`,
    syncer.origin,
    new Date(Date.now() + 86_400_000),
    syncerId.did,
  )

  /** The last repoRev the server acknowledged for each writer, and every one in order. */
  const acknowledged = new Map<string, string>()
  const acknowledgedWrites: string[] = []
  let rev = BigInt(Date.now()) * 1000n
  const send = async (url: string, i: number) => {
    const writer = writers[i]!
    const repoRev = encodeTid(++rev, 0)
    const { status } = await postNotifyWrite(url, {
      authority: authority.did,
      space,
      writer,
      repoRev,
    })
    if (status === 200) {
      acknowledged.set(writer.did, repoRev)
      acknowledgedWrites.push(`${writer.did} ${repoRev}`)
    }
    return status
  }

  /** Credentials the server issued (200), with the delegation token and holder key of each. */
  const issued: { jti: string; credential: string; token: string; holder: Keypair }[] = []
  const exchange = async (
    url: string,
    o: { user?: WebIdentity; token?: string; holder?: Keypair },
  ) => {
    const { status, body, token, holder } = await exchangeAt(url, space, o)
    if (status === 200) {
      const credential = body.credential!
      issued.push({ jti: decodeToken(credential).payload.jti as string, credential, token, holder })
    }
    return { status, error: body.error }
  }

  /** importMembers into the import space, the body streamed from `lines`. */
  const postImport = async (url: string, lines: AsyncIterable<string>) => {
    const enc = new TextEncoder()
    const body = ReadableStream.from(
      (async function* () {
        for await (const l of lines) yield enc.encode(l)
      })(),
    )
    const res = await fetch(`${url}/xrpc/${IMPORT}?${new URLSearchParams({ space: imported })}`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${serviceJwt({ iss: admin, aud: authority.did, lxm: IMPORT, nowSec: nowSec(), ttlSec: 300 })}`,
        'content-type': 'application/x-ndjson',
      },
      body,
      duplex: 'half',
    } as RequestInit)
    return { status: res.status, body: (await res.json()) as Record<string, unknown> }
  }
  const importedCount = async () => (await ctx.spaces.members.state(imported)).count

  t.match(
    await postImport(
      first.url,
      (async function* () {
        for (let i = 0; i < FIRST_IMPORT; i++) yield importLine(i)
      })(),
    ),
    { status: 200, body: { received: FIRST_IMPORT, changed: FIRST_IMPORT } },
    'an import acknowledged before the kill',
  )

  let stop = false
  const streams = writers.map(async (_, i) => {
    const statuses: (number | string)[] = []
    while (!stop) statuses.push(await send(first.url, i).catch(() => 'reset'))
    return statuses
  })
  const exchanges = readers.map(async (user) => {
    const statuses: (number | string)[] = []
    while (!stop)
      statuses.push(
        await exchange(first.url, { user }).then(
          (r) => r.status,
          () => 'reset',
        ),
      )
    return statuses
  })
  // An import whose body is still coming when the kill cuts it off.
  const cutOff = postImport(
    first.url,
    (async function* () {
      for (let i = FIRST_IMPORT; !stop; i++) {
        yield importLine(i)
        if (i % 100 === 0) await sleep(10)
      }
    })(),
  ).catch(() => 'reset')

  // Let everything flow, then kill the server under it.
  const underWay = async () =>
    acknowledged.size === WRITERS &&
    issued.length >= READERS &&
    received.length > 0 &&
    (await importedCount()) >= FIRST_IMPORT + IMPORT_BATCH
  for (let i = 0; i < 600 && !(await underWay()); i++) await sleep(50)
  t.ok(await underWay(), 'writes, exchanges, the import and deliveries are all under way')
  first.proc.child.kill('SIGKILL')
  await first.proc.exited
  const pendingAtKill = acknowledgedWrites.length - new Set(received.map((n) => n.spaceRev)).size
  stop = true
  const seen = (await Promise.all(streams)).flat()
  const exchanged = (await Promise.all(exchanges)).flat()
  t.equal(await cutOff, 'reset', 'the cut-off import was never answered')
  t.ok(seen.filter((s) => s === 200).length >= WRITERS, `${seen.length} writes sent`)
  t.same(
    [...seen, ...exchanged].filter((s) => s !== 200 && s !== 'reset'),
    [],
    'every answer before the kill was a 200',
  )
  t.ok(pendingAtKill > 0, `${pendingAtKill} acknowledged writes were not yet delivered at the kill`)

  slow = false
  const second = await startServe(t, env)

  t.test('notifyWrites: every acknowledged one is kept, spaceRevs go on above', async (t) => {
    const listed = new Map(
      (await ctx.notify.listWriters(space, 100)).map((r) => [r.did, r] as const),
    )
    for (const [did, repoRev] of acknowledged)
      t.ok(
        (listed.get(did)?.repoRev ?? '') >= repoRev,
        `${did.slice(-8)}: its acknowledged ${repoRev} is kept`,
      )
    const spaceRevs = [...listed.values()].map((r) => r.spaceRev)
    t.equal(new Set(spaceRevs).size, spaceRevs.length, 'no two writers share a spaceRev')
    // The restarted server goes on from there, above every spaceRev before the crash.
    t.equal(await send(second.url, 0), 200)
    const after = (await ctx.notify.listWriters(space, 100)).find((r) => r.did === writers[0]!.did)!
    t.ok(
      spaceRevs.every((r) => r < after.spaceRev),
      'the next write gets a spaceRev above all of them',
    )
  })

  t.test('exchanges: every issued credential is on record and its token spent', async (t) => {
    const rows = await ctx.db.prisma.issuedCredential.findMany({ where: { space } })
    const recorded = new Set(rows.map((r) => r.jti))
    t.same(
      issued.filter((c) => !recorded.has(c.jti)).map((c) => c.jti),
      [],
      `all ${issued.length} issued credentials are recorded, so revocation reaches them`,
    )
    const last = issued[issued.length - 1]!
    t.match(
      await exchange(second.url, { token: last.token, holder: last.holder }),
      { status: 401, error: 'JwtReplayed' },
      'its delegation token cannot be used again',
    )
    const res = await fetch(
      `${second.url}/xrpc/com.atproto.simplespace.getSpace?${new URLSearchParams({ space })}`,
      { headers: presentHeaders(last.credential, authority.did, last.holder) },
    )
    t.equal(res.status, 200, 'the credential works on the new process')
    await res.body?.cancel()
  })

  t.test('the import: whole slices, view and oplog agree; sent again it completes', async (t) => {
    const count = await importedCount()
    const members = await ctx.db.prisma.spaceMember.findMany({ where: { space: imported } })
    t.equal(members.length, count, 'the member table has what the list state counts')
    t.equal(
      await ctx.db.prisma.memberOp.count({ where: { space: imported } }),
      count,
      'one oplog entry per member',
    )
    t.ok(await memberDigestMatches(ctx, imported), 'the digest is the table’s')
    const cut = count - FIRST_IMPORT
    t.equal(cut % IMPORT_SLICE, 0, `the cut-off import left ${cut} members: whole slices only`)
    const dids = new Set(members.map((m) => m.did))
    t.ok(
      Array.from({ length: FIRST_IMPORT + cut }, (_, i) => memberDid(i)).every((d) => dids.has(d)),
      'the acknowledged import and the first lines of the cut-off one, in order',
    )
    // Sent again (with more lines than were cut off), it adds just the rest.
    const again = cut + IMPORT_BATCH
    t.match(
      await postImport(
        second.url,
        (async function* () {
          for (let i = FIRST_IMPORT; i < FIRST_IMPORT + again; i++) yield importLine(i)
        })(),
      ),
      { status: 200, body: { received: again, changed: again - cut } },
      'sent again, it adds just the rest',
    )
    t.equal(await importedCount(), FIRST_IMPORT + again)
    t.ok(await memberDigestMatches(ctx, imported), 'and the digest is still the table’s')
  })

  t.test('deliveries: the syncer gets every acknowledged write, in order', async (t) => {
    const delivered = () => new Set(received.map((n) => `${n.repo} ${n.repoRev}`))
    for (let i = 0; i < 400 && !acknowledgedWrites.every((w) => delivered().has(w)); i++)
      await sleep(50)
    const missing = acknowledgedWrites.filter((w) => !delivered().has(w))
    t.same(missing, [], `all ${acknowledgedWrites.length} acknowledged writes arrived`)
    // Sent again after the restart: what went out before the kill but was not yet recorded.
    const firsts = received.filter(
      (n, i) => received.findIndex((m) => m.spaceRev === n.spaceRev) === i,
    )
    const again = received.length - firsts.length
    t.ok(
      firsts.every((n, i) => i === 0 || n.prevSpaceRev === firsts[i - 1]!.spaceRev),
      `in spaceRev order with a gap-free chain (${again} sent again after the restart)`,
    )
  })
})

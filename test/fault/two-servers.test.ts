/**
 * Two `gatehouse serve` processes on one PostgreSQL database, driven at once: credential exchanges,
 * registerNotify, notifyWrites through both, three syncers receiving; one process is SIGKILLed in
 * the middle. Afterwards: a delegation token used on one process is refused on the other, every
 * acknowledged write is an event, the space's spaceRevs form one increasing chain, and every syncer
 * got every event in order with no gap (the dead process's space lease taken over by the survivor).
 * PostgreSQL leg only: SQLite is one process per database.
 */
import t from 'tap'
import { eventsAfter } from '../../src/spaces/events.js'
import { encodeTid } from '../../src/spaces/tid.js'
import { processWorld, testPostgresUrl } from '../_helpers/db.js'
import { serveEnv, startServe } from '../_helpers/serve.js'
import { MockService } from '../_helpers/services.js'
import { sideWorld } from '../_helpers/spaces.js'
import { HASH } from '../_helpers/sync.js'
import {
  delegationToken,
  exchangeHeaders,
  newHolderKey,
  presentHeaders,
  serviceJwt,
} from '../_helpers/tokens.js'
import type { Keypair } from '../../src/crypto/keypair.js'

const LEASE_SEC = 3
const WRITES_PER_WRITER = 24
const LXM = 'com.atproto.space.notifyWrite'

const skip = testPostgresUrl() ? false : 'PostgreSQL leg only (GATEHOUSE_TEST_DATABASE_URL)'

t.test('two servers on one database; one is killed mid-run', { skip }, async (t) => {
  const { dataDir, db } = await processWorld(t, 'two-servers')
  const env = serveEnv(dataDir, db.url, {
    GATEHOUSE_LEASE_SEC: String(LEASE_SEC),
    GATEHOUSE_RELAY_RETRY_BASE_MS: '100',
  })
  const [a, b] = await Promise.all([startServe(t, env), startServe(t, env)])
  const { ctx, web, authority, space } = await sideWorld(t, env, 'two-servers')
  const nowSec = () => Math.floor(Date.now() / 1000)

  const member = async (name: string, write: boolean) => {
    const u = web.create(name)
    await ctx.spaces.putMember(space, u.did, { read: true, write })
    return u
  }
  const readers = [await member('reader1', false), await member('reader2', false)]
  const writers = [await member('w1', true), await member('w2', true), await member('w3', true)]

  // Exchanges on both; a delegation token taken by one process is refused by the other.
  const exchange = async (url: string, token: string, holder: Keypair) => {
    const res = await fetch(`${url}/xrpc/com.atproto.space.getSpaceCredential`, {
      method: 'POST',
      headers: { ...exchangeHeaders(token, holder), 'content-type': 'application/json' },
      body: JSON.stringify({ space }),
    })
    return { status: res.status, body: (await res.json()) as Record<string, string> }
  }
  const creds: { credential: string; holder: Keypair }[] = []
  for (const [i, url] of [a.url, b.url].entries()) {
    const holder = newHolderKey()
    const token = delegationToken({ user: readers[i]!, space, nowSec: nowSec() })
    const first = await exchange(url, token, holder)
    t.equal(first.status, 200, `exchange on process ${i + 1}`)
    creds.push({ credential: first.body.credential!, holder })
    const replay = await exchange(i === 0 ? b.url : a.url, token, holder)
    t.not(replay.status, 200, 'the same delegation token on the other process is refused')
  }

  // Three syncers, registered through both processes, recording what they receive.
  const syncers = await Promise.all(
    [0, 1, 2].map(async (i) => {
      const svc = await MockService.start(t, (_req, res) => svc.json(res, 200, {}))
      const id = web.create(`syncer${i}`, {
        services: { atproto_space_syncer: { type: 'AtprotoSpaceSyncer', endpoint: svc.origin } },
      })
      const { credential, holder } = creds[i % 2]!
      const res = await fetch(`${[a.url, b.url][i % 2]}/xrpc/com.atproto.space.registerNotify`, {
        method: 'POST',
        headers: {
          ...presentHeaders(credential, authority.did, holder),
          'content-type': 'application/json',
        },
        body: JSON.stringify({ space, service: `${id.did}#atproto_space_syncer` }),
      })
      t.equal(res.status, 200, `syncer ${i} registered`)
      return svc
    }),
  )

  // Each writer writes in order, alternating processes; process 1 dies a third of the way in.
  const acknowledged: { repo: string; repoRev: string }[] = []
  let aAlive = true
  let rev = BigInt(Date.now()) * 1000n
  const write = async (writer: (typeof writers)[number], url: string) => {
    const repoRev = encodeTid(++rev, 0)
    const jwt = serviceJwt({
      iss: writer,
      aud: `${authority.did}#atproto_space_host`,
      lxm: LXM,
      nowSec: nowSec(),
    })
    const res = await fetch(`${url}/xrpc/${LXM}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' },
      body: JSON.stringify({ space, repo: writer.did, repoRev, hash: HASH }),
    }).catch(() => undefined)
    if (res?.status === 200) acknowledged.push({ repo: writer.did, repoRev })
  }
  await Promise.all(
    writers.map(async (writer, w) => {
      for (let i = 0; i < WRITES_PER_WRITER; i++) {
        if (w === 0 && i === WRITES_PER_WRITER / 3) {
          a.proc.child.kill('SIGKILL')
          aAlive = false
        }
        await write(writer, aAlive && (i + w) % 2 === 0 ? a.url : b.url)
      }
    }),
  )
  await a.proc.exited
  t.ok(acknowledged.length >= WRITES_PER_WRITER * writers.length * 0.9, 'most writes acknowledged')

  // Every acknowledged write is an event; the events form one chain of increasing spaceRevs.
  const events = await eventsAfter(ctx.db.hot, space, '', 10_000)
  const seen = new Set(events.map((e) => `${e.repo} ${e.repoRev}`))
  t.same(
    acknowledged.filter((w) => !seen.has(`${w.repo} ${w.repoRev}`)),
    [],
    'every acknowledged write is there',
  )
  t.ok(
    events.every(
      (e, i) =>
        i === 0 ||
        (e.spaceRev > events[i - 1]!.spaceRev && e.prevSpaceRev === events[i - 1]!.spaceRev),
    ),
    'spaceRevs strictly increasing, each naming the one before',
  )
  const revs = events.map((e) => e.spaceRev)

  // Every syncer gets every event, in order, no gap — the survivor takes the dead one's lease over.
  const firstArrivals = (svc: MockService) => {
    const out: string[] = []
    for (const c of svc.calls) {
      const r = (c.body as { spaceRev: string }).spaceRev
      if (!out.includes(r)) out.push(r)
    }
    return out
  }
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline && !syncers.every((s) => firstArrivals(s).length >= revs.length))
    await new Promise((r) => setTimeout(r, 200))
  for (const [i, svc] of syncers.entries()) {
    t.same(firstArrivals(svc), revs, `syncer ${i}: every event, in order, no gap`)
    const repeats = svc.calls.length - revs.length
    t.comment(`syncer ${i}: ${repeats} repeated (sent again after the kill, before a cursor moved)`)
  }
  b.proc.child.kill('SIGTERM')
  t.equal((await b.proc.exited).code, 0, 'the survivor shuts down cleanly')
})

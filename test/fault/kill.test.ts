/**
 * SIGKILL in the middle of a stream of notifyWrites: every write the server acknowledged (200) is
 * in the writer set after a restart on the same database, and the space's spaceRevs stay strictly
 * increasing across the crash. SQLite here, PostgreSQL in CI's PostgreSQL leg.
 */
import t from 'tap'
import { encodeTid } from '../../src/spaces/tid.js'
import { processWorld } from '../_helpers/db.js'
import { serveEnv, startServe } from '../_helpers/serve.js'
import { sideWorld } from '../_helpers/spaces.js'
import { postNotifyWrite } from '../_helpers/sync.js'

const WRITERS = 10

t.test('acknowledged notifyWrites survive a SIGKILL of the server', async (t) => {
  const { dataDir, db } = await processWorld(t, 'kill')
  const env = serveEnv(dataDir, db.url)
  const first = await startServe(t, env)

  const { ctx, web, authority, space } = await sideWorld(t, env, 'kill')
  const writers = Array.from({ length: WRITERS }, (_, i) => web.create(`writer${i}`))
  for (const w of writers) await ctx.spaces.putMember(space, w.did, { read: true, write: true })

  /** The last repoRev the server acknowledged for each writer. */
  const acknowledged = new Map<string, string>()
  let rev = BigInt(Date.now()) * 1000n
  const send = async (url: string, i: number) => {
    const writer = writers[i]!
    const repoRev = encodeTid(++rev, 0)
    const status = await postNotifyWrite(url, { authority: authority.did, space, writer, repoRev })
    if (status === 200) acknowledged.set(writer.did, repoRev)
    return status
  }
  let stop = false
  const streams = writers.map(async (_, i) => {
    const statuses: (number | string)[] = []
    while (!stop) statuses.push(await send(first.url, i).catch(() => 'reset'))
    return statuses
  })
  // Let writes flow, then kill the server under them.
  while (acknowledged.size < WRITERS) await new Promise((r) => setTimeout(r, 50))
  await new Promise((r) => setTimeout(r, 500))
  first.proc.child.kill('SIGKILL')
  await first.proc.exited
  stop = true
  const seen = (await Promise.all(streams)).flat()
  t.ok(seen.filter((s) => s === 200).length >= WRITERS, `${seen.length} writes sent`)
  t.same(
    seen.filter((s) => s !== 200 && s !== 'reset'),
    [],
    'every answer before the kill was a 200',
  )

  const second = await startServe(t, env)
  const listed = new Map((await ctx.notify.listWriters(space, 100)).map((r) => [r.did, r] as const))
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

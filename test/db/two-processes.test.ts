// Two Gatehouse processes on one database, as an operator has them whenever a CLI command runs
// beside `gatehouse serve`: both write at once, and the database must come out whole.
import t from 'tap'
import { processWorld } from '../_helpers/db.js'
import { serveEnv, startServe } from '../_helpers/serve.js'
import { sideWorld } from '../_helpers/spaces.js'
import { serviceJwt } from '../_helpers/tokens.js'

t.test('a server and a second process write at once; the database stays whole', async (t) => {
  const { dataDir, db } = await processWorld(t, 'two-proc')
  const env = serveEnv(dataDir, db.url)
  const { url } = await startServe(t, env)

  const { ctx, web, authority, space } = await sideWorld(t, env, 'two')
  const admin = web.create('admin')
  await ctx.managers.change(authority.did, admin.did, 'admin', 'operator')

  const lxm = 'com.atproto.simplespace.putMember'
  const overHttp = async (i: number) => {
    const res = await fetch(`${url}/xrpc/${lxm}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${serviceJwt({ iss: admin, aud: authority.did, lxm, nowSec: Math.floor(Date.now() / 1000), ttlSec: 300 })}`,
      },
      body: JSON.stringify({ space, did: didOf('s', i), read: true, write: i % 2 === 0 }),
    })
    return res.status
  }
  const statuses: number[] = []
  for (let round = 0; round < 15; round++) {
    const served = Promise.all(Array.from({ length: 20 }, (_, k) => overHttp(round * 20 + k)))
    for (let k = 0; k < 4; k++) {
      await ctx.spaces.putMember(space, didOf('c', round * 4 + k), { read: true, write: false })
    }
    statuses.push(...(await served))
    // Long enough for a checkpoint of either process to fall between two bursts.
    await new Promise((r) => setTimeout(r, 150))
  }
  t.same(
    statuses.filter((s) => s !== 200),
    [],
    'every write the server took succeeded',
  )
  if (db.kind === 'sqlite') {
    const check =
      await ctx.db.prisma.$queryRawUnsafe<{ integrity_check: string }[]>('PRAGMA integrity_check')
    t.same(check, [{ integrity_check: 'ok' }], 'SQLite finds the database whole')
  }
  t.equal(
    await ctx.db.prisma.spaceMember.count({ where: { space } }),
    300 + 60,
    'every member written is there',
  )
})

function didOf(prefix: string, i: number): string {
  return `did:plc:${prefix}${String(i).padStart(23, '0')}`
}

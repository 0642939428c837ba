/**
 * Revocation notices are durable: the real `gatehouse` process, killed with SIGKILL while notices to
 * a failing repo host are pending, delivers them after a restart on the same database once the
 * host recovers; a graceful shutdown (SIGTERM) with a delivery hanging finishes cleanly within its
 * timeout and leaves the notice queued.
 */
import type { ServerResponse } from 'node:http'
import t from 'tap'
import { getHostedSpace } from '../src/spaces/hosted.js'
import { loadConfig } from '../src/config.js'
import { Db } from '../src/db/client.js'
import { freePort, runGatehouse } from './_helpers/process.js'
import { MockService } from './_helpers/services.js'
import { decodeToken, spaceWorld } from './_helpers/spaces.js'
import { tidAt } from './_helpers/sync.js'

t.test('pending revocation notices survive SIGKILL and a graceful shutdown', async (t) => {
  const w = await spaceWorld(t)
  // The server processes below run on the real clock.
  w.a.clock.set(Date.now())
  let mode: 'fail' | 'hang' | 'up' = 'fail'
  const held: ServerResponse[] = []
  const host = await MockService.start(t, (_req, res) => {
    if (mode === 'hang') held.push(res)
    else host.json(res, mode === 'up' ? 200 : 503, {})
  })
  t.teardown(() => held.forEach((r) => r.destroy()))
  const writer = w.web.create('writer', {
    services: { atproto_pds: { type: 'AtprotoPersonalDataServer', endpoint: host.origin } },
  })
  await w.a.ctx.notify.acceptWrite(w.space, {
    repo: writer.did,
    repoRev: tidAt(Date.now()),
    hash: new Uint8Array(32),
  })
  const alice = w.user('alice')
  await w.a.ctx.spaces.putMember(w.space, alice.did, { read: true, write: true })
  const cred = await w.getCredential(alice)
  const jti = decodeToken(cred.body.credential as string).payload.jti as string
  const config = await getHostedSpace(w.a.ctx, w.space)
  t.equal(await w.a.ctx.credentials.revoke(config, { userDid: alice.did }), 1)
  await w.a.stop()

  const env = {
    GATEHOUSE_DATA_DIR: w.a.dataDir,
    GATEHOUSE_DATABASE_URL: w.a.database.url,
    GATEHOUSE_ALLOW_PRIVATE_NETWORK: 'true',
    GATEHOUSE_PLC_URL: 'http://127.0.0.1:9',
    GATEHOUSE_RELAY_RETRY_BASE_MS: '100',
    GATEHOUSE_RELAY_TIMEOUT_MS: '2000',
    GATEHOUSE_RELAY_BREAKER_COOLDOWN_MS: '0',
    GATEHOUSE_SHUTDOWN_TIMEOUT_MS: '10000',
  }
  const queued = async () => {
    const db = await Db.open(loadConfig(env).config.db)
    try {
      return await db.prisma.revocationNotice.count()
    } finally {
      await db.close()
    }
  }
  const serve = async () => {
    const proc = runGatehouse([], { ...env, GATEHOUSE_PORT: String(await freePort()) })
    t.teardown(() => proc.child.kill('SIGKILL'))
    await proc.waitFor(/gatehouse is serving/, 90_000)
    return proc
  }
  const until = async (what: string, ok: () => boolean) => {
    for (let i = 0; i < 600 && !ok(); i++) await new Promise((r) => setTimeout(r, 50))
    t.ok(ok(), what)
  }

  const first = await serve()
  await until('the failing host was tried twice', () => host.calls.length >= 2)
  first.child.kill('SIGKILL')
  t.equal((await first.exited).signal, 'SIGKILL')
  t.equal(await queued(), 1, 'killed: the notice is still queued')

  mode = 'hang'
  const tried = host.calls.length
  const second = await serve()
  await until('a delivery is in flight', () => held.length > 0 && host.calls.length > tried)
  second.child.kill('SIGTERM')
  t.equal((await second.exited).code, 0, 'a graceful shutdown within its timeout')
  t.ok(second.stdout.some((l) => /shut down cleanly/.test(l)))
  t.equal(await queued(), 1, 'the notice stays queued')

  mode = 'up'
  const third = await serve()
  const delivered = () =>
    host.calls.filter(
      (c) =>
        c.path === '/xrpc/com.atproto.space.notifyCredentialRevoked' &&
        JSON.stringify(c.body) === JSON.stringify({ space: w.space, credentials: [jti] }),
    ).length
  const before = delivered()
  await until('the host, recovered, receives the notice', () => delivered() > before)
  third.child.kill('SIGTERM')
  t.equal((await third.exited).code, 0)
  t.equal(await queued(), 0, 'delivered, so no longer queued')
})

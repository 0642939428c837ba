/**
 * Health, readiness and identity over real HTTP: liveness never touches the database, readiness
 * does (503 once it is gone), and the did:web document carries the service key and endpoint.
 */
import t from 'tap'
import { parseMultikey } from '../src/crypto/did-key.js'
import { loadConfig } from '../src/config.js'
import { Db } from '../src/db/client.js'
import { TestArbiter } from './_helpers/arbiter.js'
import { freePort } from './_helpers/process.js'

t.test('GET /xrpc/_health reports the version', async (t) => {
  const a = await TestArbiter.create(t)
  const res = await a.fetch('/xrpc/_health')
  t.equal(res.status, 200)
  t.same(await res.json(), { version: a.config.service.version })
})

t.test('readiness touches the database and answers 503 when it is unreachable', async (t) => {
  const a = await TestArbiter.create(t)
  const ok = await a.fetch('/xrpc/_ready')
  t.equal(ok.status, 200)
  t.same(await ok.json(), { ready: true, version: a.config.service.version, db: a.database.kind })

  // A database server that is not there: a loopback port nothing listens on.
  const port = await freePort()
  const { config } = loadConfig({ GATEHOUSE_DATABASE_URL: `postgres://gh@127.0.0.1:${port}/gone` })
  const gone = await Db.open(config.db)
  const b = await TestArbiter.create(t, { overrides: { db: gone, instanceId: 'unreachable' } })
  const down = await b.fetch('/xrpc/_ready')
  t.equal(down.status, 503)
  t.same(await down.json(), { error: 'ServiceUnavailable', message: 'Database is not reachable' })
  t.ok(down.headers.get('retry-after'))
  const live = await b.fetch('/xrpc/_health')
  t.equal(live.status, 200, 'liveness does not depend on the database')
})

t.test('readiness fails while the schema is not this release’s', async (t) => {
  const a = await TestArbiter.create(t)
  const db = a.ctx.db.prisma
  const [last] = await db.$queryRawUnsafe<{ name: string; checksum: string; applied_at: string }[]>(
    'SELECT name, checksum, applied_at FROM gatehouse_migration ORDER BY name DESC LIMIT 1',
  )
  await db.$executeRaw`DELETE FROM gatehouse_migration WHERE name = ${last!.name}`
  const pending = await a.fetch('/xrpc/_ready')
  t.equal(pending.status, 503)
  t.same(await pending.json(), {
    error: 'ServiceUnavailable',
    message: 'The database schema is not this release’s',
  })
  const { name, checksum, applied_at: at } = last!
  await db.$executeRaw`INSERT INTO gatehouse_migration (name, checksum, applied_at)
    VALUES (${name}, ${checksum}, ${at})`
  t.equal((await a.fetch('/xrpc/_ready')).status, 200, 'ready again once it is applied')

  // A newer release migrated the database this process serves.
  await db.$executeRaw`INSERT INTO gatehouse_migration (name, checksum, applied_at)
    VALUES (${'9999_from_the_future'}, ${'x'}, ${at})`
  const newer = await a.fetch('/xrpc/_ready')
  t.equal(newer.status, 503)
  t.match(await newer.json(), { message: 'The database schema is not this release’s' })
  const logged = a.logs.lines.join('\n')
  t.match(logged, `migrations pending: ${last!.name}`, 'the log names what is pending')
  t.match(logged, /9999_from_the_future, which this Gatehouse does not know/, 'and what is unknown')
  t.equal((await a.fetch('/xrpc/_health')).status, 200, 'it is still alive')
})

t.test(
  '/.well-known/did.json is the service did:web with its key and space-host endpoint',
  async (t) => {
    const a = await TestArbiter.create(t)
    const res = await a.fetch('/.well-known/did.json')
    t.equal(res.status, 200)
    t.match(res.headers.get('content-type'), /application\/did\+json/)
    const doc = (await res.json()) as {
      id: string
      verificationMethod: { id: string; type: string; publicKeyMultibase: string }[]
      service: { id: string; type: string; serviceEndpoint: string }[]
    }
    t.equal(doc.id, a.ctx.identity.did)
    t.equal(doc.id, 'did:web:localhost%3A2590')
    const vm = doc.verificationMethod[0]!
    t.equal(vm.id, `${doc.id}#atproto`)
    t.equal(vm.type, 'Multikey')
    const key = parseMultikey(vm.publicKeyMultibase)
    t.equal(key.curve, 'secp256k1')
    t.same([...key.publicKey], [...a.ctx.identity.signingKey.publicKey])
    t.same(doc.service, [
      {
        id: '#atproto_space_host',
        type: 'AtprotoSpaceHost',
        serviceEndpoint: 'http://localhost:2590',
      },
    ])
  },
)

t.test('no did.json when the service DID is not a did:web of our own host', async (t) => {
  const a = await TestArbiter.create(t, {
    env: { GATEHOUSE_SERVICE_DID: 'did:plc:abcdefghijklmnopqrstuvwx' },
  })
  t.equal((await a.fetch('/.well-known/did.json')).status, 404)
})

t.test('describeServer says who we are and which wire generation we speak', async (t) => {
  const a = await TestArbiter.create(t)
  const res = await a.fetch('/xrpc/dev.gatehouse.server.describeServer')
  const body = (await res.json()) as Record<string, any>
  const { methods, ...who } = body
  t.same(who, {
    did: a.ctx.identity.did,
    version: a.config.service.version,
    publicUrl: 'http://localhost:2590',
    wireGeneration: 'C',
    compatibility: ['A'],
  })
  const row = (nsid: string, role: string) =>
    (methods as { nsid: string; role: string; emits: string[] }[]).find(
      (m) => m.nsid === nsid && m.role === role,
    )
  t.same(row('com.atproto.space.notifyWrite', 'served'), {
    nsid: 'com.atproto.space.notifyWrite',
    role: 'served',
    accepts: ['A', 'C'],
    emits: ['A', 'C'],
  })
  t.same(row('com.atproto.space.notifyCredentialRevoked', 'sent')?.emits, ['C'])
  // Every Spaces method served here is described.
  for (const m of a.app.xrpc.list().filter((m) => m.nsid.startsWith('com.atproto.')))
    t.ok(row(m.nsid, 'served'), `${m.nsid} is described`)
})

t.test('the service key survives a restart on the same data dir', async (t) => {
  const first = await TestArbiter.create(t)
  const did = first.ctx.identity.signingKey.did()
  const instanceId = first.ctx.instanceId
  await first.stop()
  const second = await TestArbiter.create(t, { database: first.database, dataDir: first.dataDir })
  t.equal(second.ctx.identity.signingKey.did(), did)
  t.equal(second.ctx.instanceId, instanceId, 'the installation id is kept in the database')
})

/**
 * The real `gatehouse` process: boots with nothing configured but a data dir and port, serves
 * health, keeps its data dir, database and service key private, shuts down cleanly on SIGTERM, and
 * refuses bad configuration with one line naming the variable (start-failures.test.ts has the
 * settings that parse but cannot be used).
 */
import { chmodSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { processWorld } from './_helpers/db.js'
import { freePort, runGatehouse } from './_helpers/process.js'

t.test('a bad GATEHOUSE_PORT exits non-zero with one line naming it', async (t) => {
  const proc = runGatehouse([], { GATEHOUSE_PORT: 'abc' })
  const { code } = await proc.exited
  t.not(code, 0)
  t.equal(proc.stderr.length, 1, 'exactly one line')
  t.match(proc.stderr[0], /^gatehouse: invalid configuration: GATEHOUSE_PORT: /)
  t.same(proc.stdout, [])
})

t.test('an unknown command prints usage and exits 2', async (t) => {
  const proc = runGatehouse(['frobnicate'], {})
  t.equal((await proc.exited).code, 2)
  t.match(proc.stderr.join('\n'), /usage: gatehouse/)
})

t.test('serves, then drains and exits 0 on SIGTERM', async (t) => {
  const w = await processWorld(t, 'bin')
  const { db } = w
  // A data dir Gatehouse has to create itself, so its mode is Gatehouse's doing.
  const dataDir = join(w.dataDir, 'data')
  const port = await freePort()
  const proc = runGatehouse([], {
    GATEHOUSE_PORT: String(port),
    GATEHOUSE_DATA_DIR: dataDir,
    GATEHOUSE_DATABASE_URL: db.url,
  })
  t.teardown(() => proc.child.kill('SIGKILL'))
  await proc.waitFor(/gatehouse is serving/)

  const health = await fetch(`http://127.0.0.1:${port}/xrpc/_health`)
  t.equal(health.status, 200)
  t.match(await health.json(), { version: /^\d+\.\d+\.\d+/ })
  const ready = await fetch(`http://127.0.0.1:${port}/xrpc/_ready`)
  t.match(await ready.json(), { ready: true, db: db.kind })

  const keyFile = join(dataDir, 'service-key.json')
  t.equal(statSync(keyFile).mode & 0o777, 0o600, 'service key readable by its owner only')
  t.equal(statSync(dataDir).mode & 0o777, 0o700, 'data dir open to its owner only')
  if (db.kind === 'sqlite') {
    // While serving, SQLite holds the database with its -wal and -shm beside it.
    const file = db.url.replace(/^file:/, '')
    for (const path of [file, `${file}-wal`, `${file}-shm`]) {
      t.equal(statSync(path).mode & 0o777, 0o600, `${path} readable by its owner only`)
    }
  }
  const doc = (await (await fetch(`http://127.0.0.1:${port}/.well-known/did.json`)).json()) as {
    id: string
  }
  t.equal(doc.id, `did:web:localhost%3A${port}`)

  proc.child.kill('SIGTERM')
  const { code } = await proc.exited
  t.equal(code, 0)
  t.ok(proc.stdout.some((l) => /shut down cleanly/.test(l)))
  t.notOk(
    proc.stdout.some((l) => /privateKeyHex/.test(l)),
    'no key material in the log',
  )
})

t.test('`gatehouse migrate` applies migrations once', async (t) => {
  const { dataDir, db } = await processWorld(t, 'migrate')
  const env = { GATEHOUSE_DATA_DIR: dataDir, GATEHOUSE_DATABASE_URL: db.url }
  const first = runGatehouse(['migrate'], env)
  t.equal((await first.exited).code, 0, first.stderr.join('\n'))
  t.match(first.stdout.join('\n'), /applied: 0001_init/)
  const second = runGatehouse(['migrate'], env)
  t.equal((await second.exited).code, 0)
  t.match(second.stdout.join('\n'), /up to date/)
})

t.test('a database left readable by others is narrowed to its owner', async (t) => {
  const { dataDir } = await processWorld(t, 'modes')
  chmodSync(dataDir, 0o755)
  const file = join(dataDir, 'gatehouse.sqlite')
  writeFileSync(file, '')
  chmodSync(file, 0o644)
  const proc = runGatehouse(['migrate'], { GATEHOUSE_DATA_DIR: dataDir })
  t.equal((await proc.exited).code, 0, proc.stderr.join('\n'))
  t.equal(statSync(file).mode & 0o777, 0o600)
  t.equal(statSync(dataDir).mode & 0o777, 0o755, "an existing data dir keeps its operator's mode")
})

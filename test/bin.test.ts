/**
 * The real `gatehouse` process: boots with nothing configured but a data dir and port, serves
 * health, keeps its data dir, database and service key private, shuts down cleanly on SIGTERM,
 * refuses bad configuration (and a data dir, port or database it cannot use) promptly with one line
 * naming the variable, and keeps operator commands' stdout to their JSON results.
 */
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { platform, tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { createTestDatabase } from './_helpers/db.js'
import { freePort, runGatehouse } from './_helpers/process.js'

/** A generous bound on "promptly": a start that hangs is killed, and the test fails. */
const GUARD_MS = 60_000

/** A data dir and database of the test's own, removed afterwards. */
async function world(t: { teardown(fn: () => unknown): void }, label: string) {
  const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-bin-'))
  const db = await createTestDatabase(label)
  t.teardown(async () => {
    rmSync(dataDir, { recursive: true, force: true })
    await db.cleanup()
  })
  return { dataDir, db }
}

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
  const w = await world(t, 'bin')
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
  const { dataDir, db } = await world(t, 'migrate')
  const env = { GATEHOUSE_DATA_DIR: dataDir, GATEHOUSE_DATABASE_URL: db.url }
  const first = runGatehouse(['migrate'], env)
  t.equal((await first.exited).code, 0, first.stderr.join('\n'))
  t.match(first.stdout.join('\n'), /applied: 0001_init/)
  const second = runGatehouse(['migrate'], env)
  t.equal((await second.exited).code, 0)
  t.match(second.stdout.join('\n'), /up to date/)
})

t.test('a database left readable by others is narrowed to its owner', async (t) => {
  const { dataDir } = await world(t, 'modes')
  chmodSync(dataDir, 0o755)
  const file = join(dataDir, 'gatehouse.sqlite')
  writeFileSync(file, '')
  chmodSync(file, 0o644)
  const proc = runGatehouse(['migrate'], { GATEHOUSE_DATA_DIR: dataDir })
  t.equal((await proc.exited).code, 0, proc.stderr.join('\n'))
  t.equal(statSync(file).mode & 0o777, 0o600)
  t.equal(statSync(dataDir).mode & 0o777, 0o755, "an existing data dir keeps its operator's mode")
})

/** Runs gatehouse expecting it to refuse to start; fails (and kills it) if it does not end. */
async function refusesToStart(t: Test, args: string[], env: Record<string, string>) {
  const proc = runGatehouse(args, env)
  const guard = setTimeout(() => proc.child.kill('SIGKILL'), GUARD_MS)
  const { code, signal } = await proc.exited
  clearTimeout(guard)
  t.equal(signal, null, 'ended by itself, not killed by the guard')
  t.not(code, 0)
  t.equal(proc.stderr.length, 1, `exactly one line: ${proc.stderr.join(' | ')}`)
  return proc.stderr[0] ?? ''
}

t.test(
  'a data dir that cannot be made is named in one line, promptly',
  { skip: platform() !== 'linux' && 'uses /proc' },
  async (t) => {
    // Node's recursive mkdir loops for ever under /proc.
    const line = await refusesToStart(t, [], { GATEHOUSE_DATA_DIR: '/proc/nope' })
    t.match(
      line,
      /^gatehouse: invalid configuration: GATEHOUSE_DATA_DIR: .*\/proc\/nope.*\(ENOENT\)$/,
    )
  },
)

t.test(
  'a data dir where files cannot be written is named in one line, with the path',
  { skip: platform() !== 'linux' && 'uses /proc (read-only even for root)' },
  async (t) => {
    const line = await refusesToStart(t, [], { GATEHOUSE_DATA_DIR: '/proc/self' })
    t.match(line, /^gatehouse: invalid configuration: GATEHOUSE_DATA_DIR: .*\/proc\/self\//)
  },
)

t.test('a busy port is named in one line', async (t) => {
  const { dataDir, db } = await world(t, 'busy')
  const taken = createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => taken.close(resolve)))
  const port = (taken.address() as AddressInfo).port
  const line = await refusesToStart(t, [], {
    GATEHOUSE_PORT: String(port),
    GATEHOUSE_DATA_DIR: dataDir,
    GATEHOUSE_DATABASE_URL: db.url,
  })
  t.match(
    line,
    new RegExp(`^gatehouse: invalid configuration: GATEHOUSE_PORT: .*:${port} .*EADDRINUSE`),
  )
})

t.test('an unreachable database is named in one line, without its password', async (t) => {
  const { dataDir } = await world(t, 'unreachable')
  // Nothing listens on the discard port, and no port-0 listener can be given it (a port from
  // freePort could be taken by a parallel test's server before the database client connects).
  const port = 9
  const line = await refusesToStart(t, [], {
    GATEHOUSE_DATA_DIR: dataDir,
    GATEHOUSE_DATABASE_URL: `postgres://gatehouse:pw-s3cret@127.0.0.1:${port}/gatehouse`,
  })
  t.match(
    line,
    new RegExp(
      `^gatehouse: invalid configuration: GATEHOUSE_DATABASE_URL: .*127\\.0\\.0\\.1:${port}.*ECONNREFUSED`,
    ),
  )
  t.notMatch(line, /pw-s3cret/)
})

t.test('operator commands print results on stdout and logs on stderr', async (t) => {
  const { dataDir, db } = await world(t, 'pipes')
  const env = { GATEHOUSE_DATA_DIR: dataDir, GATEHOUSE_DATABASE_URL: db.url }
  // The first command against a new database applies migrations, and logs that it did.
  const list = runGatehouse(['authority', 'list'], env)
  t.equal((await list.exited).code, 0, list.stderr.join('\n'))
  t.same(JSON.parse(list.stdout.join('\n')), [], 'stdout is the result alone')
  t.ok(
    list.stderr.some((l) => /applied database migrations/.test(l)),
    'the migration log line is on stderr',
  )

  const rotate = runGatehouse(['kek', 'rotate'], env)
  t.equal((await rotate.exited).code, 0, rotate.stderr.join('\n'))
  t.equal(rotate.stdout.length, 1)
  t.match(JSON.parse(rotate.stdout[0]!), { rewrapped: 0, kekId: /^[0-9a-f]{16}$/ })
})

/**
 * Settings that parse but cannot be used stop the real `gatehouse` process promptly, with the same
 * one line naming the variable that a value which does not parse gets: a data dir that cannot be
 * made (under /proc, Node's recursive mkdir used to spin for ever) or written, a port in use, a
 * database that does not answer (never showing its password); and in production, what only
 * development may do.
 */
import { existsSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { platform } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { processWorld } from './_helpers/db.js'
import { freePort, runGatehouse } from './_helpers/process.js'

/** A generous bound on "promptly": a start that hangs is killed, and the test fails. */
const GUARD_MS = 60_000

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
  const { dataDir, db } = await processWorld(t, 'busy')
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
  const { dataDir } = await processWorld(t, 'unreachable')
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

t.test(
  'production refuses what only development may do, naming the variable in one line',
  async (t) => {
    // Its own data dir and a free port: were a refusal missing, the server would start there.
    const { dataDir } = await processWorld(t, 'production')
    const production = {
      GATEHOUSE_ENV: 'production',
      GATEHOUSE_KEK: 'ab'.repeat(32),
      GATEHOUSE_DATA_DIR: dataDir,
      GATEHOUSE_PORT: String(await freePort()),
    }
    const https = { ...production, GATEHOUSE_PUBLIC_URL: 'https://gatehouse.example.com' }
    const refusals: [Record<string, string>, RegExp][] = [
      [
        production,
        /GATEHOUSE_PUBLIC_URL: must be https in production \(got "http:\/\/localhost:\d+"\)$/,
      ],
      [{ ...https, GATEHOUSE_ALLOW_PRIVATE_NETWORK: 'true' }, /GATEHOUSE_ALLOW_PRIVATE_NETWORK: /],
      [
        { ...https, GATEHOUSE_KEK: '' },
        /GATEHOUSE_KEK: must be set in production .*kek\.key.*GATEHOUSE_ALLOW_KEK_IN_DATA_DIR=true/,
      ],
    ]
    for (const [env, message] of refusals) {
      const line = await refusesToStart(t, [], env)
      t.match(line, /^gatehouse: invalid configuration: GATEHOUSE_/)
      t.match(line, message)
    }
  },
)

t.test('production serves with the KEK in the data dir once that is accepted', async (t) => {
  const { dataDir, db } = await processWorld(t, 'kek-in-data-dir')
  const proc = runGatehouse([], {
    GATEHOUSE_ENV: 'production',
    GATEHOUSE_PUBLIC_URL: 'https://gatehouse.example.com',
    GATEHOUSE_ALLOW_KEK_IN_DATA_DIR: 'true',
    GATEHOUSE_PORT: String(await freePort()),
    GATEHOUSE_DATA_DIR: dataDir,
    GATEHOUSE_DATABASE_URL: db.url,
  })
  t.teardown(() => proc.child.kill('SIGKILL'))
  await proc.waitFor(/gatehouse is serving/)
  t.ok(existsSync(join(dataDir, 'kek.key')), 'the KEK is kept in the data dir')
  proc.child.kill('SIGTERM')
  t.equal((await proc.exited).code, 0)
})

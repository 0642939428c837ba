/**
 * PostgreSQL goes away in the middle of a run (an immediate shutdown, as a crash) and comes back:
 * while it is down every method that needs it answers 503 ServiceUnavailable (never a 500, never a
 * 4xx that a repo host would drop), liveness stays up and readiness says why; once it is back the
 * same Gatehouse, not restarted, serves everything again and nothing acknowledged was lost.
 * Runs in CI's PostgreSQL leg, on a cluster of its own (the shared one must not be crashed).
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { PACKAGE_ROOT } from '../../src/paths.js'
import { testPostgresUrl } from '../_helpers/db.js'
import { freePort } from '../_helpers/process.js'
import { spaceWorld } from '../_helpers/spaces.js'
import { notifier, tidAt } from '../_helpers/sync.js'

const cluster = (...args: string[]) =>
  execFileSync('bash', [join(PACKAGE_ROOT, 'scripts/pg-cluster.sh'), ...args], {
    encoding: 'utf8',
  }).trim()

const pgLeg = {
  skip: testPostgresUrl() ? false : 'PostgreSQL leg only (GATEHOUSE_TEST_DATABASE_URL)',
}

t.test(
  'a PostgreSQL crash: 503 while it is down, full service after, no restart',
  pgLeg,
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-pgcrash-'))
    const port = await freePort()
    const url = cluster('start', dir, String(port))
    t.teardown(() => {
      cluster('stop', dir)
      rmSync(dir, { recursive: true, force: true })
    })
    process.env.GATEHOUSE_TEST_DATABASE_URL = url
    const w = await spaceWorld(t)
    const writer = w.user('writer')
    await w.a.ctx.spaces.putMember(w.space, writer.did, { read: true, write: true })
    const notify = notifier(w)
    let n = 0
    const write = () => notify(writer, { repoRev: tidAt(w.a.clock.nowMs() + ++n) })
    t.equal((await write()).status, 200)
    t.equal((await w.getCredential(writer)).status, 200)

    cluster('crash', dir)
    const down = await write()
    t.match(down, { status: 503, body: { error: 'ServiceUnavailable' } }, 'notifyWrite: 503')
    t.match(
      await w.getCredential(w.user('someone')),
      { status: 503, body: { error: 'ServiceUnavailable' } },
      'getSpaceCredential: 503',
    )
    const ready = await w.a.fetch('/xrpc/_ready')
    t.equal(ready.status, 503, 'not ready')
    t.equal((await w.a.fetch('/xrpc/_health')).status, 200, 'alive')

    cluster('resume', dir, String(port))
    // The pool drops its dead connections as they fail; within a few tries everything answers.
    let back = 0
    for (let i = 0; i < 50 && back !== 200; i++) {
      back = (await w.a.fetch('/xrpc/_ready')).status
      if (back !== 200) await new Promise((r) => setTimeout(r, 200))
    }
    t.equal(back, 200, 'ready again')
    t.equal((await write()).status, 200, 'notifyWrite again')
    t.equal((await w.getCredential(writer)).status, 200, 'credentials again')
    const repos = await w.a.ctx.notify.listWriters(w.space, 10)
    t.equal(repos.length, 1, 'the writer is in the writer set')
    t.equal(repos[0]!.repoRev, tidAt(w.a.clock.nowMs() + n), 'with its last acknowledged rev')
  },
)

/**
 * `gatehouse backup --out FILE`, run as the operator runs it (its own process) against a serving
 * Gatehouse that keeps writing: the copy is consistent (a prefix of the acknowledged writes, its
 * audit chain whole), 0600, and a second Gatehouse started on it with the old KEK and service key
 * serves — it issues a credential, so the sealed authority key opens. On PostgreSQL the command
 * refuses and points at pg_dump.
 */
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { KEK_FILE } from '../../src/keys/vault.js'
import { SERVICE_KEY_FILE } from '../../src/service-identity.js'
import { TestArbiter } from '../_helpers/arbiter.js'
import { runGatehouse } from '../_helpers/process.js'
import { spaceWorld } from '../_helpers/spaces.js'
import { delegationToken, exchangeHeaders, newHolderKey } from '../_helpers/tokens.js'

t.test('an online backup taken while members are being added opens and serves', async (t) => {
  const w = await spaceWorld(t)
  const env = { GATEHOUSE_DATA_DIR: w.a.dataDir, GATEHOUSE_DATABASE_URL: w.a.database.url }
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-backup-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const out = join(dir, 'copy.sqlite')

  if (w.a.database.kind === 'postgres') {
    const run = runGatehouse(['backup', '--out', out], env)
    t.equal((await run.exited).code, 2, 'refused')
    t.match(run.stderr.join('\n'), /pg_dump/, 'naming the tool that backs PostgreSQL up')
    t.notOk(existsSync(out), 'and writing nothing')
    return
  }

  const member = (i: number) => w.user(`m${i}`).did
  const add = (i: number) =>
    w.a.ctx.spaces.putMember(w.space, member(i), { read: true, write: false })
  for (let i = 0; i < 20; i++) await add(i)
  // Members keep arriving, one acknowledged write after another, all through the backup.
  let added = 20
  let writing = true
  const writer = (async () => {
    while (writing) {
      await add(added++)
      // On SQLite a write can finish in microtasks alone: let the child's exit be seen.
      await new Promise((r) => setImmediate(r))
    }
  })()
  const run = runGatehouse(['backup', '--out', out], env)
  const { code } = await run.exited
  writing = false
  await writer
  t.equal(code, 0, run.stderr.join('\n'))
  const result = JSON.parse(run.stdout.join('\n')) as { out: string; bytes: number; pages: number }
  t.equal(result.out, out)
  t.equal(result.bytes, statSync(out).size)
  t.equal(statSync(out).mode & 0o777, 0o600, 'the copy is readable by its owner only')
  t.same(readdirSync(dir), ['copy.sqlite'], 'nothing else is left beside it')

  // A second Gatehouse on the copy, with the first one's KEK and service key (kept apart from it).
  const dataDir = join(dir, 'data')
  const restored = join(dir, 'restored.sqlite')
  copyFileSync(out, restored)
  mkdirSync(dataDir, { mode: 0o700 })
  for (const file of [KEK_FILE, SERVICE_KEY_FILE])
    copyFileSync(join(w.a.dataDir, file), join(dataDir, file))
  const b = await TestArbiter.create(t, {
    dataDir,
    database: { url: `file:${restored}`, kind: 'sqlite', cleanup: async () => {} },
  })
  const members: string[] = []
  for await (const m of b.ctx.spaces.members.iterate(w.space)) members.push(m.did)
  const expected = Array.from({ length: members.length }, (_, i) => member(i)).sort()
  t.ok(members.length >= 20 && members.length <= added, `${members.length} of ${added} members`)
  t.same(members.sort(), expected, 'the copy holds exactly the first N writes: one commit’s state')
  t.match(await b.ctx.audit.verify(w.authority.did), { ok: true }, 'its audit chain is whole')

  const holder = newHolderKey()
  const token = delegationToken({ user: w.user('m0'), space: w.space, nowSec: w.now() })
  b.clock.set(w.a.clock.nowMs())
  const res = await b.fetch('/xrpc/com.atproto.space.getSpaceCredential', {
    method: 'POST',
    headers: { ...exchangeHeaders(token, holder), 'content-type': 'application/json' },
    body: JSON.stringify({ space: w.space }),
  })
  t.equal(res.status, 200, 'the restored host signs a credential with the sealed key')

  // Refusals: one line, nothing written.
  writeFileSync(join(dir, 'taken'), 'keep')
  const again = runGatehouse(['backup', '--out', join(dir, 'taken')], env)
  t.equal((await again.exited).code, 2)
  t.match(again.stderr.join('\n'), /exists; name a new file/)
  const bare = runGatehouse(['backup'], env)
  t.equal((await bare.exited).code, 2)
  t.match(bare.stderr.join('\n'), /usage: gatehouse backup --out FILE/)
  const nowhere = runGatehouse(['backup', '--out', join(dir, 'no/such/dir.sqlite')], env)
  t.equal((await nowhere.exited).code, 2)
  t.match(nowhere.stderr.join('\n'), /no directory/)
})

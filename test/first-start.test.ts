// Several processes started at once on a fresh data dir (two `gatehouse serve` behind a load
// balancer, a CLI beside them) each make the KEK and the service key if missing: one of them wins,
// the others read the winner's, whole — never a failure, never a half-written file.
import { execFile } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { createPrivateFileOnce } from '../src/files.js'
import { PACKAGE_ROOT } from '../src/paths.js'

const run = promisify(execFile)

t.test('createPrivateFileOnce: the first writer wins, the file whole and 0600', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-once-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'key')
  t.equal(createPrivateFileOnce(path, 'first\n'), true)
  t.equal(createPrivateFileOnce(path, 'second\n'), false, 'a later one is told it lost')
  t.equal(readFileSync(path, 'utf8'), 'first\n', 'and does not overwrite')
  t.equal(statSync(path).mode & 0o777, 0o600)
  t.same(readdirSync(dir), ['key'], 'no temporary file left behind')
})

t.test('eight processes making the keys at once agree on them', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-first-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const dataDir = join(dir, 'data')
  const script = `
    import { loadKeyring } from './src/keys/vault.ts'
    import { loadServiceKey } from './src/service-identity.ts'
    const ring = loadKeyring(process.argv[1])
    const key = loadServiceKey({ service: { dataDir: process.argv[1] } }, {})
    console.log(Buffer.from(ring.current.key).toString('hex'), key.did())`
  const outputs = await Promise.all(
    Array.from({ length: 8 }, () =>
      run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, dataDir], {
        cwd: PACKAGE_ROOT,
      }),
    ),
  )
  const lines = new Set(outputs.map((o) => o.stdout.trim()))
  t.equal(lines.size, 1, 'every process holds the same KEK and service key')
  const [kek, did] = [...lines][0]!.split(' ')
  t.equal(
    readFileSync(join(dataDir, 'kek.key'), 'utf8'),
    `${kek}\n`,
    'the KEK file is the winner’s',
  )
  t.match(did, /^did:key:z/)
  t.same(readdirSync(dataDir).sort(), ['kek.key', 'service-key.json'], 'no temporary files')
})

/**
 * The run-wide key-material scan (scripts/scan-test-logs.mjs) finds a held secret however it was
 * written into a log — hex, base64, base64url, inside a longer value — and passes clean logs.
 */
import { spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { PACKAGE_ROOT } from '../src/paths.js'

function scan(log: string, secret: Buffer) {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-keyscan-'))
  try {
    writeFileSync(
      join(dir, 'a.keys'),
      `${secret.subarray(0, 4).toString('hex')} ${createHash('sha256').update(secret).digest('hex')}\n`,
    )
    writeFileSync(join(dir, 'a.log'), log)
    return spawnSync(process.execPath, [join(PACKAGE_ROOT, 'scripts/scan-test-logs.mjs')], {
      env: { ...process.env, GATEHOUSE_TEST_KEYSCAN_DIR: dir },
      encoding: 'utf8',
    })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

t.test('a logged secret is found in every encoding', async (t) => {
  const secret = randomBytes(32)
  const forms = {
    hex: secret.toString('hex'),
    'hex inside a longer value': `ab${secret.toString('hex')}cd`,
    base64: secret.toString('base64'),
    base64url: secret.toString('base64url'),
    'base64 of a longer value': Buffer.concat([Buffer.from('xy'), secret]).toString('base64'),
  }
  for (const [name, form] of Object.entries(forms)) {
    const res = scan(`{"level":30,"msg":"x","v":"${form}"}\n`, secret)
    t.equal(res.status, 1, name)
    t.match(res.stderr, /FOUND key material/, name)
  }
})

t.test('clean logs pass', async (t) => {
  const secret = randomBytes(32)
  const other = randomBytes(32)
  const res = scan(
    `{"msg":"${other.toString('hex')}","b":"${other.toString('base64url')}"}\n`,
    secret,
  )
  t.equal(res.status, 0, res.stderr)
  t.match(res.stdout, /key-material scan: clean \(1 secrets, 1 server logs/)
})

// The run-wide check that no key material reached a log. Every Gatehouse a test starts
// (test/_helpers/arbiter.ts) leaves, when it stops, its log lines and the SHA-256 of every secret it
// held (authority keys, service key, KEK) in .tap/gatehouse-run/. This script looks through all the
// logs for any 32-byte value, hex or base64 in any alignment, whose hash is one of those secrets.
//   node scripts/scan-test-logs.mjs --reset   empty the folder (before the run)
//   node scripts/scan-test-logs.mjs           scan; exit 1 and say where when anything is found
import { createHash } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const dir =
  process.env.GATEHOUSE_TEST_KEYSCAN_DIR ??
  join(dirname(fileURLToPath(import.meta.url)), '..', '.tap', 'gatehouse-run')
if (process.argv.includes('--reset')) {
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  process.exit(0)
}

let files = []
try {
  files = readdirSync(dir)
} catch {
  // No Gatehouse ran (a partial run): nothing to scan.
}
const hashes = new Set()
const prefixes = new Set()
for (const f of files.filter((f) => f.endsWith('.keys'))) {
  for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
    const [prefix, hash] = line.trim().split(' ')
    if (!hash) continue
    prefixes.add(prefix)
    hashes.add(hash)
  }
}

/** True when some 32-byte window of `bytes` is a held secret. */
function holdsSecret(bytes) {
  for (let i = 0; i + 32 <= bytes.length; i++) {
    if (!prefixes.has(bytes.subarray(i, i + 4).toString('hex'))) continue
    const hash = createHash('sha256')
      .update(bytes.subarray(i, i + 32))
      .digest('hex')
    if (hashes.has(hash)) return true
  }
  return false
}

const findings = []
let scannedBytes = 0
for (const f of files.filter((f) => f.endsWith('.log'))) {
  const text = readFileSync(join(dir, f), 'utf8')
  scannedBytes += text.length
  // Hex runs, read from both nibble alignments.
  for (const m of text.matchAll(/[0-9a-fA-F]{64,}/g)) {
    const run = m[0]
    if (holdsSecret(Buffer.from(run, 'hex')) || holdsSecret(Buffer.from(run.slice(1), 'hex')))
      findings.push(`${f}: hex at ${m.index}`)
  }
  // base64 and base64url runs, read from all four character alignments.
  for (const m of text.matchAll(/[A-Za-z0-9+/_-]{43,}/g)) {
    const run = m[0].replace(/-/g, '+').replace(/_/g, '/')
    for (let k = 0; k < 4; k++) {
      if (holdsSecret(Buffer.from(run.slice(k), 'base64'))) {
        findings.push(`${f}: base64 at ${m.index}`)
        break
      }
    }
  }
}

const logs = files.filter((f) => f.endsWith('.log')).length
if (findings.length) {
  console.error(`key-material scan: FOUND key material in test logs:\n  ${findings.join('\n  ')}`)
  process.exit(1)
}
console.log(
  `key-material scan: clean (${hashes.size} secrets, ${logs} server logs, ${scannedBytes} bytes)`,
)

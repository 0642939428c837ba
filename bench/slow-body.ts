import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { request } from 'node:http'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PACKAGE_ROOT } from '../src/paths.js'
import { freePort } from '../test/_helpers/process.js'
import { percentile, type Bench } from './_lib.js'

/**
 * Slow-body attack (issue 22 item 10): health checks against a served Gatehouse, first idle (the
 * baseline), then while one client address holds ATTACK_CONNECTIONS connections that each send a
 * request's headers and then its body a byte at a time, reconnecting a second after the server
 * closes one. The server runs as deployed (`node dist/bin.js serve`, default connection limits)
 * under a 1,024 file-descriptor limit, the one the attack exhausted. Health checks come from
 * another loopback address (127.0.0.1; the attacker uses 127.0.0.2), one new connection each, as a
 * load balancer's probes do. Target: health keeps answering.
 */

const ATTACK_CONNECTIONS = 1000
const FD_LIMIT = 1024
const PROBES_PER_SEC = 10
const PROBE_TIMEOUT_MS = 5000
const BASELINE_SEC = 15
const ATTACK_SEC = 30
/** The attack runs this long before probes are counted, so they see it at full strength. */
const ATTACK_RAMP_SEC = 5
const TRICKLE_INTERVAL_MS = 5000
const RECONNECT_MS = 1000
const ATTACKER_ADDRESS = '127.0.0.2'

interface ProbeResult {
  latenciesMs: number[]
  ok: number
  failed: number
}

/** One health check on a new connection: its latency, or undefined when it failed. */
function probe(port: number): Promise<number | undefined> {
  const t0 = performance.now()
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/xrpc/_health',
        agent: false,
        headers: { connection: 'close' },
        timeout: PROBE_TIMEOUT_MS,
      },
      (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode === 200 ? performance.now() - t0 : undefined))
        res.on('error', () => resolve(undefined))
      },
    )
    req.on('timeout', () => req.destroy(new Error('probe timed out')))
    req.on('error', () => resolve(undefined))
    req.end()
  })
}

/** Probes at PROBES_PER_SEC for `seconds`, each on its own connection. */
async function probeFor(port: number, seconds: number): Promise<ProbeResult> {
  const result: ProbeResult = { latenciesMs: [], ok: 0, failed: 0 }
  const pending: Promise<void>[] = []
  const end = performance.now() + seconds * 1000
  while (performance.now() < end) {
    pending.push(
      probe(port).then((ms) => {
        if (ms === undefined) result.failed++
        else {
          result.ok++
          result.latenciesMs.push(ms)
        }
      }),
    )
    await new Promise((r) => setTimeout(r, 1000 / PROBES_PER_SEC))
  }
  await Promise.all(pending)
  result.latenciesMs.sort((a, b) => a - b)
  return result
}

/** The attacker: keeps `count` slow-body connections going from ATTACKER_ADDRESS. */
function attack(port: number, count: number) {
  const stats = { opened: 0, closedByServer: 0, answered: 0, held: 0, peakHeld: 0 }
  const sockets = new Set<Socket>()
  let stopped = false
  const head =
    'POST /xrpc/com.atproto.space.notifyWrite HTTP/1.1\r\nHost: gatehouse\r\n' +
    'Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{"'
  const one = () => {
    if (stopped) return
    const socket = connect({ port, host: '127.0.0.1', localAddress: ATTACKER_ADDRESS })
    sockets.add(socket)
    stats.opened++
    let connected = false
    let trickle: NodeJS.Timeout | undefined
    socket.on('connect', () => {
      connected = true
      stats.held++
      stats.peakHeld = Math.max(stats.peakHeld, stats.held)
      socket.write(head)
      trickle = setInterval(() => socket.writable && socket.write('a'), TRICKLE_INTERVAL_MS)
    })
    socket.on('data', () => stats.answered++)
    socket.on('error', () => {})
    socket.on('close', () => {
      clearInterval(trickle)
      sockets.delete(socket)
      if (connected) stats.held--
      if (stopped) return
      stats.closedByServer++
      setTimeout(one, RECONNECT_MS)
    })
  }
  for (let i = 0; i < count; i++) one()
  return {
    stats,
    stop() {
      stopped = true
      for (const s of sockets) s.destroy()
    },
  }
}

/** Open file descriptors and resident memory of a process (Linux /proc). */
function processUse(pid: number): { fds: number; rssMb: number } {
  const fds = readdirSync(`/proc/${pid}/fd`).length
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const rssMb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024
  return { fds, rssMb }
}

const bench: Bench = {
  name: 'slow-body',
  async run() {
    const bin = join(PACKAGE_ROOT, 'dist/bin.js')
    if (!existsSync(bin)) throw new Error('dist/bin.js is missing: run `npm run build` first')
    const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-slow-'))
    const port = await freePort()
    // `ulimit -n` in sh sets the hard limit too: Node would otherwise raise its soft limit to the hard.
    const child = spawn('sh', ['-c', `ulimit -n ${FD_LIMIT} && exec node "$0" serve`, bin], {
      cwd: PACKAGE_ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        GATEHOUSE_VALIDATE_OUTPUT: 'false',
        GATEHOUSE_DATA_DIR: dataDir,
        GATEHOUSE_PORT: String(port),
        GATEHOUSE_LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    })
    const ended = new Promise<void>((r) => child.once('exit', () => r()))
    let attacker: ReturnType<typeof attack> | undefined
    try {
      for (let i = 0; (await probe(port)) === undefined; i++) {
        if (i > 200) throw new Error('gatehouse serve did not answer')
        await new Promise((r) => setTimeout(r, 50))
      }
      await probeFor(port, 2) // warm-up, not counted
      const base = await probeFor(port, BASELINE_SEC)
      const idleUse = processUse(child.pid!)

      attacker = attack(port, ATTACK_CONNECTIONS)
      await new Promise((r) => setTimeout(r, ATTACK_RAMP_SEC * 1000))
      let peakUse = processUse(child.pid!)
      const sampler = setInterval(() => {
        const use = processUse(child.pid!)
        if (use.fds > peakUse.fds) peakUse = { ...use }
      }, 1000)
      const during = await probeFor(port, ATTACK_SEC)
      clearInterval(sampler)
      const held = attacker.stats.held
      attacker.stop()

      const rate = (r: ProbeResult) => (100 * r.ok) / Math.max(1, r.ok + r.failed)
      const baseP99 = percentile(base.latenciesMs, 99)
      const attackP99 = percentile(during.latenciesMs, 99)
      return {
        bench: 'slow-body',
        figures: [
          { name: 'idle health p50', value: percentile(base.latenciesMs, 50), unit: 'ms' },
          { name: 'idle health p99', value: baseP99, unit: 'ms' },
          { name: 'idle health success', value: rate(base), unit: '%' },
          { name: 'attack health p50', value: percentile(during.latenciesMs, 50), unit: 'ms' },
          { name: 'attack health p99', value: attackP99, unit: 'ms' },
          { name: 'attack health success', value: rate(during), unit: '%' },
          { name: 'attack health checks', value: during.ok + during.failed, unit: '' },
          { name: 'attacker connections opened', value: attacker.stats.opened, unit: '' },
          { name: 'attacker connections held at the end', value: held, unit: '' },
          {
            name: 'attacker connections closed by server',
            value: attacker.stats.closedByServer,
            unit: '',
          },
          { name: 'server fds idle', value: idleUse.fds, unit: '' },
          { name: 'server fds peak during attack', value: peakUse.fds, unit: '' },
          { name: 'server RSS during attack', value: peakUse.rssMb, unit: 'MB' },
        ],
        ratios: { 'attack p99 / idle p99 (health)': attackP99 / baseP99 },
        targets: {
          'health keeps answering': {
            target: '100 %',
            met: during.failed === 0 && during.ok > 0,
          },
        },
        notes: [
          `server under ulimit -n ${FD_LIMIT}; the bench process's own limit is set by its shell`,
          `${ATTACK_CONNECTIONS} attacker connections from ${ATTACKER_ADDRESS}, a byte every ${TRICKLE_INTERVAL_MS / 1000} s, reconnecting ${RECONNECT_MS / 1000} s after a close; default connection limits`,
          `health probes from 127.0.0.1 at ${PROBES_PER_SEC}/s, one new connection each, ${PROBE_TIMEOUT_MS / 1000} s timeout`,
        ],
      }
    } finally {
      attacker?.stop()
      child.kill('SIGTERM')
      await ended
      rmSync(dataDir, { recursive: true, force: true })
    }
  },
}
export default bench

import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { MAX_DELEGATION_TTL_SEC } from '../src/crypto/space-token.js'
import { PACKAGE_ROOT } from '../src/paths.js'
import { encodeTid } from '../src/spaces/tid.js'
import { freePort } from '../test/_helpers/process.js'
import {
  delegationToken,
  exchangeHeaders,
  newHolderKey,
  serviceJwt,
} from '../test/_helpers/tokens.js'
import { benchWorld, importMembers, type BenchWorld } from './_world.js'
import { httpLoad, percentile, type Bench, type Figure, type LoadResult } from './_lib.js'

/**
 * One against two `gatehouse serve` processes on one PostgreSQL (a private cluster the bench starts
 * in a temp dir and stops at the end; skipped when no PostgreSQL binaries are installed). Two loads,
 * each closed-loop with 16 keep-alive clients for the bench's seconds: getSpaceCredential on a
 * member-list space (10,000 members) and notifyWrite on 10 public spaces (50 writers), every request
 * with a token and signature of its own, made before the load starts. Phase 1 sends them to one
 * process; phase 2 starts a second process on the same data dir and database and spreads the same
 * load over both, request by request. Each load is warmed up (unmeasured) on the processes it meets.
 *
 * Printed for each load and phase: requests/s, p50, p99, and where the machine's CPU time went
 * during the measured seconds, from /proc (utime + stime, ticks): the Gatehouse processes, the
 * PostgreSQL cluster (the postmaster, its live children, and the children it reaped meanwhile), this
 * process (the load generator's thread, the did:web host and an idle setup context), and the rest of
 * the machine (busy time in /proc/stat not accounted to these), each as a share of all cores × wall
 * time; also Gatehouse's and PostgreSQL's CPU per request, and (1 s before each phase's loads) the
 * processes' idle CPU, which weighs on the per-request figures at low rates. The notify load also
 * counts the writes recorded (a notification older than its writer's last is ignored). The ratios
 * are two processes ÷ one. On a 2-core machine two processes cannot double: the CPU shares say
 * whether the cores were already full and how much of them the database took.
 */
const MEMBERS = 10_000
const USERS = 50
const WRITERS = 50
const NOTIFY_SPACES = 10
const CONCURRENCY = 16

const bench: Bench = {
  name: 'scale',
  async run({ seconds }) {
    const pgBin = postgresBin()
    if (!pgBin) {
      const why =
        'skipped: no PostgreSQL initdb under /usr/lib/postgresql/*/bin (Debian package postgresql)'
      console.log(`  scale: ${why}`)
      return { bench: 'scale', figures: [], ratios: {}, notes: [why] }
    }
    const cluster = await startCluster()
    let world: BenchWorld | undefined
    try {
      world = await benchWorld({
        skey: 'credential',
        policy: {
          readPolicy: { kind: 'member-list' },
          writePolicy: { kind: 'member-list' },
          appAccess: { kind: 'open' },
        },
        env: { GATEHOUSE_DATABASE_URL: cluster.url },
        serverProcess: true,
      })
      const { ctx, web, authority } = world
      const credentialSpace = world.space
      // A host's writes land in many spaces; each space's spaceRev is taken under its row lock.
      const notifySpaces: string[] = []
      for (let i = 0; i < NOTIFY_SPACES; i++) {
        const created = await ctx.spaces.create({
          authority: authority.did,
          spaceType: 'com.example.forum',
          skey: `notify-${i}`,
          readPolicy: { kind: 'public' },
          writePolicy: { kind: 'public' },
          appAccess: { kind: 'open' },
        })
        notifySpaces.push(created.uri)
      }
      const users = Array.from({ length: USERS }, (_, i) => web.create(`user${i}`))
      // A holder key per user, as a client keeps one per session (a fresh key per request would
      // double the time to make the request sets).
      const holderKeys = users.map(() => newHolderKey())
      const writers = Array.from({ length: WRITERS }, (_, i) => web.create(`writer${i}`))
      await importMembers(world, MEMBERS, (i) =>
        i < USERS ? users[i]!.did : `did:plc:${String(i).padStart(24, 'a')}`,
      )

      // Request sets, made before each load so the load generator only sends.
      const credentialBody = JSON.stringify({ space: credentialSpace })
      const credentialRequests = (n: number): RequestSet => {
        const nowSec = Math.floor(Date.now() / 1000)
        return {
          path: '/xrpc/com.atproto.space.getSpaceCredential',
          bodies: [credentialBody],
          headers: Array.from({ length: n }, (_, i) => {
            const token = delegationToken({
              user: users[i % USERS]!,
              space: credentialSpace,
              nowSec,
              exp: nowSec + MAX_DELEGATION_TTL_SEC,
            })
            return exchangeHeaders(token, holderKeys[i % USERS]!)
          }),
        }
      }
      let rev = Date.now() * 1000
      const notifyRequests = (n: number): RequestSet => {
        const nowSec = Math.floor(Date.now() / 1000)
        const headers: Record<string, string>[] = []
        const bodies: string[] = []
        for (let i = 0; i < n; i++) {
          const writer = writers[i % WRITERS]!
          const aud = `${authority.did}#atproto_space_host`
          const lxm = 'com.atproto.space.notifyWrite'
          headers.push({
            authorization: `Bearer ${serviceJwt({ iss: writer, aud, lxm, nowSec, ttlSec: 600 })}`,
          })
          bodies.push(
            JSON.stringify({
              space: notifySpaces[(i % WRITERS) % NOTIFY_SPACES],
              repo: writer.did,
              repoRev: encodeTid(BigInt(++rev), 2),
              hash: { $bytes: 'AAAA' },
            }),
          )
        }
        return { path: '/xrpc/com.atproto.space.notifyWrite', bodies, headers }
      }
      // Request sets are made for at most these rates (a load that goes faster ends early).
      const loads = {
        credential: { requests: credentialRequests, maxPerSecond: 1500 },
        notify: { requests: notifyRequests, maxPerSecond: 3000 },
      }

      const recordedWrites = () =>
        ctx.db.prisma.spaceEvent.count({ where: { space: { in: notifySpaces } } })
      const cores = availableParallelism()
      const pg = () => cluster.postmasterPid()
      const figures: Figure[] = []
      const notes: string[] = []
      const perSecond: Record<string, number> = {}
      const p99: Record<string, number> = {}
      const phase = async (label: string, servers: { url: string; pid: number }[]) => {
        // The set's requests from CONCURRENCY clients, spread over the servers, for `sec` at most.
        const send = (set: RequestSet, sec: number) =>
          httpLoad({
            url: servers.map((s) => s.url + set.path),
            method: 'POST',
            bodies: set.bodies,
            headers: set.headers,
            concurrency: CONCURRENCY,
            seconds: sec,
            maxRequests: set.headers.length,
          })
        // The processes' own background work (relay, tallies, janitor) with no requests: 1 s idle.
        const idleFrom = cpuSnapshot(servers, pg())
        await new Promise((r) => setTimeout(r, 1000))
        const idle = cpuShares(idleFrom, cpuSnapshot(servers, pg()), cores)
        figures.push(
          {
            name: `idle, ${label}: CPU, Gatehouse`,
            value: idle.gatehouse * 100,
            unit: '% of cores',
          },
          {
            name: `idle, ${label}: CPU, PostgreSQL`,
            value: idle.postgres * 100,
            unit: '% of cores',
          },
        )
        for (const [load, { requests, maxPerSecond }] of Object.entries(loads)) {
          // Unmeasured, at most 2 s: the JIT, the DID caches and the connections of every process.
          const warmed = await send(requests(1000), 2)
          // Enough requests for three times the warm-up's rate, or (a cold second process warms
          // slowly) 2.5 times the one-process rate, at most `maxPerSecond`: each made ahead costs
          // the bench a millisecond or two. A load that runs out ends early, and says so.
          const expected = Math.max(
            100,
            3 * warmed.perSecond,
            2.5 * (perSecond[`${load}, 1 process`] ?? 0),
          )
          const n = Math.round(seconds * Math.min(maxPerSecond, expected))
          const set = requests(n)
          const recordedBefore = await recordedWrites()
          const before = cpuSnapshot(servers, pg())
          const result = await send(set, seconds)
          const cpu = cpuShares(before, cpuSnapshot(servers, pg()), cores)
          const key = `${load}, ${label}`
          perSecond[key] = result.perSecond
          p99[key] = percentile(result.latenciesMs, 99)
          figures.push(...loadFigures(key, result, cpu, servers.length))
          if (result.requests + result.errors >= n)
            notes.push(
              `${key}: all ${n} requests made ahead were sent before ${seconds} s had passed`,
            )
          if (load === 'notify') {
            // Proof the intake did its work: a notification older than its writer's last is ignored.
            const recorded = (await recordedWrites()) - recordedBefore
            figures.push({
              name: `${key}: writes recorded`,
              value: recorded,
              unit: `of ${result.requests}`,
            })
          }
        }
      }

      await phase('1 process', [world.server!])
      const second = await world.addServer!()
      await phase('2 processes', [world.server!, second])

      const ratios: Record<string, number> = {}
      for (const load of Object.keys(loads)) {
        ratios[`${load} req/s, 2 processes / 1`] =
          perSecond[`${load}, 2 processes`]! / perSecond[`${load}, 1 process`]!
        ratios[`${load} p99, 2 processes / 1`] =
          p99[`${load}, 2 processes`]! / p99[`${load}, 1 process`]!
      }
      return {
        bench: 'scale',
        figures,
        ratios,
        notes: [
          ...notes,
          `PostgreSQL ${pgBin.version} on loopback (fsync off), ${cores} cores; ${CONCURRENCY} closed-loop clients per load, spread over the processes request by request.`,
          'CPU shares are of all cores × the measured wall time: Gatehouse processes, PostgreSQL (postmaster and backends), this process (load generator thread, did:web host), rest of the machine (other busy time in /proc/stat).',
          `notifyWrite spread over ${NOTIFY_SPACES} spaces (${WRITERS / NOTIFY_SPACES} writers each): each takes its space's row lock for the spaceRev, so intakes of one space queue on it in both processes.`,
        ],
      }
    } finally {
      await world?.close()
      cluster.stop()
    }
  },
}

/** Requests made ahead: one header set per request, bodies round-robin. */
interface RequestSet {
  path: string
  bodies: string[]
  headers: Record<string, string>[]
}

function loadFigures(key: string, result: LoadResult, cpu: CpuShares, processes: number): Figure[] {
  const perRequestMs = (ticks: number) => (ticks * 1000) / TICKS_PER_SECOND / result.requests
  return [
    { name: `${key}: req/s`, value: result.perSecond, unit: 'req/s' },
    { name: `${key}: p50`, value: percentile(result.latenciesMs, 50), unit: 'ms' },
    { name: `${key}: p99`, value: percentile(result.latenciesMs, 99), unit: 'ms' },
    { name: `${key}: errors`, value: result.errors, unit: '' },
    {
      name: `${key}: CPU, Gatehouse (${processes})`,
      value: cpu.gatehouse * 100,
      unit: '% of cores',
    },
    { name: `${key}: CPU, PostgreSQL`, value: cpu.postgres * 100, unit: '% of cores' },
    { name: `${key}: CPU, load generator`, value: cpu.bench * 100, unit: '% of cores' },
    { name: `${key}: CPU, rest of machine`, value: cpu.rest * 100, unit: '% of cores' },
    {
      name: `${key}: PostgreSQL CPU per request`,
      value: perRequestMs(cpu.postgresTicks),
      unit: 'ms',
    },
    {
      name: `${key}: Gatehouse CPU per request`,
      value: perRequestMs(cpu.gatehouseTicks),
      unit: 'ms',
    },
  ]
}

// --- the PostgreSQL cluster ---

function postgresBin(): { dir: string; version: string } | undefined {
  const root = '/usr/lib/postgresql'
  if (!existsSync(root)) return undefined
  const version = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin/initdb')))
    .sort((a, b) => Number(a) - Number(b))
    .at(-1)
  return version ? { dir: join(root, version, 'bin'), version } : undefined
}

/** A throwaway cluster (scripts/pg-cluster.sh) in a temp dir on a free loopback port. */
async function startCluster() {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-pg-'))
  const script = join(PACKAGE_ROOT, 'scripts/pg-cluster.sh')
  try {
    const port = await freePort()
    const url = execFileSync('bash', [script, 'start', dir, String(port)], {
      encoding: 'utf8',
    }).trim()
    return {
      url,
      postmasterPid: () =>
        Number(readFileSync(join(dir, 'data/postmaster.pid'), 'utf8').split('\n')[0]),
      stop() {
        execFileSync('bash', [script, 'stop', dir])
        rmSync(dir, { recursive: true, force: true })
      },
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
}

// --- CPU time from /proc ---

const TICKS_PER_SECOND = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  } catch {
    return 100
  }
})()

interface ProcStat {
  ppid: number
  /** utime + stime */
  own: number
  /** cutime + cstime: children it has waited for */
  reaped: number
}

function procStat(pid: number): ProcStat | undefined {
  let text: string
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined // gone meanwhile
  }
  // Fields after the command name (which may hold spaces): state ppid … utime(14) stime cutime cstime.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ')
  return {
    ppid: Number(f[1]),
    own: Number(f[11]) + Number(f[12]),
    reaped: Number(f[13]) + Number(f[14]),
  }
}

/** A PostgreSQL cluster's ticks: the postmaster's, its live children's, and those it reaped. */
function clusterTicks(postmaster: number): number {
  const main = procStat(postmaster)
  let ticks = main ? main.own + main.reaped : 0
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const s = procStat(Number(name))
    if (s?.ppid === postmaster) ticks += s.own + s.reaped
  }
  return ticks
}

/** Busy ticks of the whole machine (all cores): everything but idle and iowait. */
function machineBusyTicks(): number {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1)
  const n = cpu.map(Number)
  // user nice system idle iowait irq softirq steal (guest time is already in user).
  return n.slice(0, 8).reduce((a, b) => a + b, 0) - n[3]! - n[4]!
}

interface CpuSnapshot {
  at: number
  gatehouse: number
  postgres: number
  bench: number
  machine: number
}

function cpuSnapshot(servers: { pid: number }[], postmaster: number): CpuSnapshot {
  return {
    at: performance.now(),
    gatehouse: servers.reduce((sum, s) => sum + (procStat(s.pid)?.own ?? 0), 0),
    postgres: clusterTicks(postmaster),
    bench: procStat(process.pid)!.own,
    machine: machineBusyTicks(),
  }
}

interface CpuShares {
  gatehouse: number
  postgres: number
  bench: number
  rest: number
  gatehouseTicks: number
  postgresTicks: number
}

function cpuShares(a: CpuSnapshot, b: CpuSnapshot, cores: number): CpuShares {
  const capacity = ((b.at - a.at) / 1000) * TICKS_PER_SECOND * cores
  const gatehouse = b.gatehouse - a.gatehouse
  const postgres = b.postgres - a.postgres
  const benchTicks = b.bench - a.bench
  const rest = Math.max(0, b.machine - a.machine - gatehouse - postgres - benchTicks)
  return {
    gatehouse: gatehouse / capacity,
    postgres: postgres / capacity,
    bench: benchTicks / capacity,
    rest: rest / capacity,
    gatehouseTicks: gatehouse,
    postgresTicks: postgres,
  }
}

export default bench

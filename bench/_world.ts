import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../src/config.js'
import { createContext, type AppContext } from '../src/context.js'
import { createLogger } from '../src/logger.js'
import type { SpacePolicy } from '../src/policy/types.js'
import { buildServer } from '../src/server.js'
import { PACKAGE_ROOT } from '../src/paths.js'
import { DidWebHost, type WebIdentity } from '../test/_helpers/identities.js'
import { serviceJwt } from '../test/_helpers/tokens.js'
import { NO_IDENTITY_LIMITS } from '../test/_helpers/arbiter.js'
import { freePort } from '../test/_helpers/process.js'
import { registerAuthority } from '../test/_helpers/spaces.js'

/**
 * What every benchmark starts from: a real Gatehouse without output validation, as in production, on
 * loopback (its own data dir and SQLite database), a did:web host, an authority Gatehouse holds the
 * key of, and one space.
 */
export interface BenchWorld {
  /** In this process: for setup and in-process measurements (with `serverProcess`, on the same database). */
  ctx: AppContext
  url: string
  /** With `serverProcess`: the server's peak resident memory so far, in MB (VmHWM). */
  serverPeakRssMb?: () => number
  /** With `serverProcess`: the `gatehouse serve` child behind `url`. */
  server?: ServerProcess
  /**
   * With `serverProcess`: starts one more `gatehouse serve` child on the same data dir and database
   * (a port of its own), stopped with the world.
   */
  addServer?: () => Promise<ServerProcess>
  web: DidWebHost
  authority: WebIdentity
  space: string
  close(): Promise<void>
}

export async function benchWorld(opts: {
  env?: Record<string, string>
  policy: SpacePolicy
  skey: string
  /**
   * Serve from a `gatehouse serve` child process on the same database (so its memory can be
   * measured on its own); this process keeps a context for setup and in-process checks.
   */
  serverProcess?: boolean
  /**
   * In-process server: checkpoint SQLite on a thread, as `gatehouse serve` does (default true;
   * false measures commits that checkpoint inline).
   */
  checkpointer?: boolean
}): Promise<BenchWorld> {
  const teardowns: (() => unknown)[] = []
  const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-'))
  teardowns.push(() => rmSync(dataDir, { recursive: true, force: true }))
  const close = async () => {
    for (const fn of teardowns.reverse()) await fn()
  }
  try {
    const web = await DidWebHost.start({ teardown: (fn) => void teardowns.push(fn) })
    const { config, secrets } = loadConfig({
      GATEHOUSE_VALIDATE_OUTPUT: 'false',
      GATEHOUSE_DATA_DIR: dataDir,
      GATEHOUSE_RATE_LIMIT_PER_MINUTE: '0',
      GATEHOUSE_ALLOW_PRIVATE_NETWORK: 'true',
      ...UNREACHED_IDENTITY_LIMITS,
      ...opts.env,
    })
    const ctx = await createContext(config, secrets, {
      overrides: { logger: createLogger({ level: 'warn' }) },
    })
    teardowns.push(() => ctx.destroy())
    const authority = web.create('authority')
    await registerAuthority(ctx, authority.did, { atproto: authority.key })
    const space = (
      await ctx.spaces.create({
        authority: authority.did,
        spaceType: 'com.example.forum',
        skey: opts.skey,
        ...opts.policy,
      })
    ).uri
    if (opts.serverProcess) {
      const addServer = async () => {
        const child = await serve(dataDir, opts.env ?? {})
        teardowns.push(() => child.stop())
        return child
      }
      const server = await addServer()
      return {
        ctx,
        url: server.url,
        web,
        authority,
        space,
        close,
        serverPeakRssMb: server.peakRssMb,
        server,
        addServer,
      }
    }
    if (opts.checkpointer !== false)
      await ctx.db.checkpointInBackground((err) => ctx.logger.warn({ err }, 'checkpointer failed'))
    const app = await buildServer(ctx)
    const url = await app.listen({ host: '127.0.0.1', port: 0 })
    teardowns.push(() => app.close())
    return { ctx, url, web, authority, space, close }
  } catch (err) {
    await close()
    throw err
  }
}

/**
 * A load generator is one identity sending far more than a person would: the per-identity limits
 * stay on (their cost is measured) but high enough never to refuse.
 */
const UNREACHED_IDENTITY_LIMITS = Object.fromEntries(
  Object.keys(NO_IDENTITY_LIMITS).map((name) => [name, '10000000']),
)

export interface ServerProcess {
  url: string
  pid: number
  /** Peak resident memory so far, in MB (VmHWM). */
  peakRssMb(): number
  stop(): Promise<void>
}

/**
 * `gatehouse serve` in a child process on the bench's data dir (and so its database), run from the
 * build (`npm run bench` builds first), as it is deployed: no TypeScript loader in its memory.
 */
async function serve(dataDir: string, env: Record<string, string>): Promise<ServerProcess> {
  const port = await freePort()
  const child = spawn(process.execPath, [join(PACKAGE_ROOT, 'dist/bin.js'), 'serve'], {
    cwd: PACKAGE_ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      GATEHOUSE_VALIDATE_OUTPUT: 'false',
      GATEHOUSE_DATA_DIR: dataDir,
      GATEHOUSE_PORT: String(port),
      GATEHOUSE_RATE_LIMIT_PER_MINUTE: '0',
      GATEHOUSE_ALLOW_PRIVATE_NETWORK: 'true',
      ...UNREACHED_IDENTITY_LIMITS,
      // As the in-process worlds: warnings and errors only (they show in the bench's output), no
      // access log line per request.
      GATEHOUSE_LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  })
  let exited = false
  const ended = new Promise<void>((r) =>
    child.once('exit', () => {
      exited = true
      r()
    }),
  )
  const url = `http://127.0.0.1:${port}`
  for (;;) {
    if (exited) throw new Error('gatehouse serve exited before serving')
    const ready = await fetch(`${url}/xrpc/_ready`).then(
      (r) => r.ok,
      () => false,
    )
    if (ready) break
    await new Promise((r) => setTimeout(r, 50))
  }
  return {
    url,
    pid: child.pid!,
    peakRssMb() {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8')
      const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN)
      return kb / 1024
    },
    async stop() {
      child.kill('SIGTERM')
      await ended
    },
  }
}

/**
 * Fills `world.space` with `count` members through the bulk import endpoint (JSON lines, streamed),
 * as an operator would: member `i` is `didOf(i)`, write access on even lines. The import is done by
 * the server, so its oplog and digest are complete and nothing the bench made lingers in the heap
 * of an in-process server. Returns the import's duration in seconds.
 */
export async function importMembers(
  world: BenchWorld,
  count: number,
  didOf: (i: number) => string,
): Promise<number> {
  const { ctx, url, web, authority, space } = world
  const admin = web.create('importer')
  await ctx.managers.change(authority.did, admin.did, 'admin', 'operator')
  const lxm = 'dev.gatehouse.simplespace.importMembers'
  const enc = new TextEncoder()
  let next = 0
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (next >= count) return controller.close()
      let chunk = ''
      for (let k = 0; k < 2000 && next < count; k++, next++) {
        chunk += `{"did":"${didOf(next)}","read":true,"write":${next % 2 === 0}}\n`
      }
      controller.enqueue(enc.encode(chunk))
    },
  })
  const start = performance.now()
  const res = await fetch(`${url}/xrpc/${lxm}?${new URLSearchParams({ space })}`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${serviceJwt({ iss: admin, aud: authority.did, lxm, nowSec: Math.floor(Date.now() / 1000) })}`,
      'content-type': 'application/x-ndjson',
    },
    body,
    duplex: 'half',
  } as RequestInit)
  const imported = (await res.json()) as { changed: number }
  if (res.status !== 200 || imported.changed !== count)
    throw new Error(`import failed: ${res.status} ${JSON.stringify(imported)}`)
  return (performance.now() - start) / 1000
}

/**
 * One notifyWrite to the world's Gatehouse, as `writer`'s repo host sends it (service auth, the
 * authority's #atproto_space_host audience); throws unless it is accepted.
 */
export async function sendNotifyWrite(
  world: Pick<BenchWorld, 'url' | 'authority'>,
  space: string,
  writer: WebIdentity,
  repoRev: string,
): Promise<void> {
  const jwt = serviceJwt({
    iss: writer,
    aud: `${world.authority.did}#atproto_space_host`,
    lxm: 'com.atproto.space.notifyWrite',
    nowSec: Math.floor(Date.now() / 1000),
  })
  const r = await fetch(`${world.url}/xrpc/com.atproto.space.notifyWrite`, {
    method: 'POST',
    headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' },
    body: JSON.stringify({ space, repo: writer.did, repoRev, hash: { $bytes: 'AAAA' } }),
  })
  if (r.status !== 200) throw new Error(`notifyWrite ${r.status}: ${await r.text()}`)
}

/**
 * A syncer's identity (a did:web whose `#atproto_space_syncer` is `endpoint`) registered for
 * `space` directly through the notify service, as registerNotify would: setup, not measurement.
 * Returns its DID.
 */
export async function registerSyncer(
  world: Pick<BenchWorld, 'ctx' | 'web'>,
  space: string,
  name: string,
  endpoint: string,
  expiresAt: Date,
): Promise<string> {
  const id = world.web.create(name, {
    services: { atproto_space_syncer: { type: 'AtprotoSpaceSyncer', endpoint } },
  })
  await world.ctx.notify.register(
    space,
    `${id.did}#atproto_space_syncer`,
    endpoint,
    expiresAt,
    id.did,
  )
  return id.did
}

import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { ManualClock } from './clock.js'
import { loadConfig, type Config, type Secrets } from '../../src/config.js'
import { createContext, type AppContext, type ContextOptions } from '../../src/context.js'
import { createLogger } from '../../src/logger.js'
import { buildServer } from '../../src/server.js'
import { aadFor } from '../../src/authorities/authority-service.js'
import { KEK_FILE } from '../../src/keys/vault.js'
import { PACKAGE_ROOT } from '../../src/paths.js'
import { createTestDatabase, type TestDatabase } from './db.js'
import { LogCapture } from './logs.js'

export { LogCapture }

/** The part of a tap test the fixture needs. */
export interface TestLike {
  teardown(fn: () => unknown): void
  fullname?: string
  name?: string
}

/** Every per-identity limit off. */
export const NO_IDENTITY_LIMITS = Object.fromEntries(
  [
    'CREDENTIALS_PER_USER',
    'CREDENTIALS_PER_CLIENT',
    'NOTIFY_PER_REPO',
    'NOTIFY_PER_REPO_HOST',
    'REGISTER_NOTIFY_PER_SERVICE',
    'LOGINS_PER_ADDRESS',
    'REST_PER_PRINCIPAL',
  ].map((name) => [`GATEHOUSE_${name}_PER_MINUTE`, '0']),
)

export interface TestArbiterOptions {
  /** Extra GATEHOUSE_* variables. */
  env?: Record<string, string>
  overrides?: ContextOptions['overrides']
  /** Runs after the routes are built and before listening: add test-only routes here. */
  beforeListen?: (app: FastifyInstance, ctx: AppContext) => void | Promise<void>
  /** Reuse an existing database (to test restarts) instead of creating one. */
  database?: TestDatabase
  /** Reuse a data dir (to test restarts). */
  dataDir?: string
  /** Listen on this port (when the configuration must name it, as a did:web host does). */
  port?: number
}

/**
 * A real Gatehouse on 127.0.0.1 and a random port, with its own database, data dir, manual clock and
 * captured logs. Closed (and its database removed) when the test ends.
 */
export class TestArbiter {
  private constructor(
    readonly app: FastifyInstance,
    readonly ctx: AppContext,
    readonly url: string,
    readonly clock: ManualClock,
    readonly logs: LogCapture,
    readonly database: TestDatabase,
    readonly dataDir: string,
    readonly config: Config,
  ) {}

  static async create(t: TestLike, opts: TestArbiterOptions = {}): Promise<TestArbiter> {
    const ownsDb = !opts.database
    const database = opts.database ?? (await createTestDatabase(t.name ?? 'test'))
    const ownsDir = !opts.dataDir
    const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'gatehouse-data-'))
    const { config, secrets } = loadConfig({
      GATEHOUSE_ENV: 'test',
      GATEHOUSE_DATA_DIR: dataDir,
      GATEHOUSE_DATABASE_URL: database.url,
      GATEHOUSE_LOG_LEVEL: 'debug',
      GATEHOUSE_RATE_LIMIT_PER_MINUTE: '0',
      // Tests make many calls as one identity; test/rate-limits.test.ts sets these.
      ...NO_IDENTITY_LIMITS,
      GATEHOUSE_DATABASE_POOL_SIZE: '4',
      // Tests run every peer on loopback; nothing may reach a public PLC directory.
      GATEHOUSE_ALLOW_PRIVATE_NETWORK: 'true',
      GATEHOUSE_PLC_URL: 'http://127.0.0.1:9',
      GATEHOUSE_FETCH_TIMEOUT_MS: '2000',
      // A loaded CI machine can take seconds for a managing app's round trip (DID resolution, a
      // signature, HTTP); tests of the timeout itself set their own.
      GATEHOUSE_MANAGING_APP_TIMEOUT_MS: '10000',
      ...opts.env,
    })
    const logs = new LogCapture()
    const clock = new ManualClock(Date.UTC(2026, 10, 23, 12, 0, 0))
    const ctx = await createContext(config, secrets as Secrets, {
      overrides: {
        logger: createLogger({ level: config.log.level, destination: logs }),
        clock,
        ...opts.overrides,
      },
    })
    const app = await buildServer(ctx)
    await opts.beforeListen?.(app, ctx)
    const address = await app.listen({ host: '127.0.0.1', port: opts.port ?? 0 })
    const arbiter = new TestArbiter(app, ctx, address, clock, logs, database, dataDir, config)
    t.teardown(async () => {
      await arbiter.stop()
      if (ownsDb) await database.cleanup()
      if (ownsDir) rmSync(dataDir, { recursive: true, force: true })
    })
    return arbiter
  }

  private stopped?: Promise<void>

  /** Stops serving and closes the database (idempotent); the test's teardown also calls it. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      const secrets = await heldSecrets(this).catch(() => [] as Uint8Array[])
      await this.app.close()
      await this.ctx.destroy()
      recordForKeyScan(this.logs.lines, secrets)
    })()
    return this.stopped
  }

  /** A request against the running server over real loopback HTTP. */
  async fetch(path: string, init?: RequestInit): Promise<Response> {
    return fetch(new URL(path, this.url), init)
  }
}

/** Every secret a Gatehouse holds: each sealed authority key (opened), its service key, its KEK. */
async function heldSecrets(a: TestArbiter): Promise<Uint8Array[]> {
  const rows = await a.ctx.db.prisma.authorityKey.findMany()
  const keys = rows.map((r) =>
    a.ctx.vault.open(new Uint8Array(r.secretEnc), aadFor(r.id, r.authorityDid, r.purpose), r.kekId),
  )
  const kekFile = join(a.dataDir, KEK_FILE)
  const keks = existsSync(kekFile)
    ? readFileSync(kekFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((h) => Buffer.from(h.trim(), 'hex'))
    : []
  return [...keys, a.ctx.identity.signingKey.exportSecretKey(), ...keks]
}

let recorded = 0

/**
 * Leaves this server's log and the hashes of its secrets where scripts/scan-test-logs.mjs looks at
 * the end of `npm test` (the run-wide check that no key material was ever logged). Only hashes and a
 * 4-byte prefix are written, never a secret.
 */
function recordForKeyScan(lines: string[], secrets: Uint8Array[]): void {
  const dir = join(PACKAGE_ROOT, '.tap', 'gatehouse-run')
  mkdirSync(dir, { recursive: true })
  const base = join(dir, `${process.pid}-${++recorded}`)
  writeFileSync(`${base}.log`, `${lines.join('\n')}\n`)
  writeFileSync(
    `${base}.keys`,
    secrets
      .filter((s) => s.length === 32)
      .map(
        (s) =>
          `${Buffer.from(s.subarray(0, 4)).toString('hex')} ${createHash('sha256').update(s).digest('hex')}\n`,
      )
      .join(''),
  )
}

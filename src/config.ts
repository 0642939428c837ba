import { resolve } from 'node:path'
import { z } from 'zod'

/**
 * Gatehouse configuration: one zod schema over the GATEHOUSE_* environment variables, turned into a
 * nested Config. Every default works with no setup. `process.env` is read only in bin.ts; tests call
 * `loadConfig({...})` with a plain object.
 */

export type DatabaseKind = 'sqlite' | 'postgres'
export type RunMode = 'development' | 'production' | 'test'

export interface Config {
  mode: RunMode
  service: {
    host: string
    port: number
    publicUrl: string
    did: string
    version: string
    dataDir: string
    bodyLimitBytes: number
    rateLimitPerMinute: number
    trustProxy: boolean
    shutdownTimeoutMs: number
    /** Worker threads that make signatures (0: sign on the event loop). */
    signingThreads: number
    /** Nonces per curve the signing threads keep made ahead (keys/sign-pool.ts); 0: none. */
    signingNonces: number
    /** Validate every XRPC output against its schema (catches our own bugs; costs CPU). */
    validateOutput: boolean
    /** Time a client has to send a whole request, headers and body (Node's requestTimeout). */
    requestTimeoutMs: number
    /** Connections held open at once, in all (more are closed as soon as they are accepted). */
    maxConnections: number
    /** Connections held open at once from one client address (IPv6: one /64). */
    maxConnectionsPerAddress: number
  }
  db: {
    kind: DatabaseKind
    /** `file:` path for SQLite, connection string for PostgreSQL. */
    url: string
    poolSize: number
    /** SQLite only: how long a writer waits on a lock held by another process. */
    busyTimeoutMs: number
    /**
     * SQLite only: `normal` (WAL commits survive a crash of the process; a power cut may lose the
     * last ones) or `full` (an fsync on every commit).
     */
    sqliteSynchronous: 'normal' | 'full'
  }
  log: {
    level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
  }
  identity: {
    plcUrl: string
    didCacheTtlMs: number
    didCacheMaxEntries: number
    /** Total size of the cached DID documents, in bytes (least recently used dropped first). */
    didCacheMaxBytes: number
    /** DID documents larger than this are refused (their issuers' requests with them). */
    didDocMaxBytes: number
  }
  net: {
    /** Let outbound requests reach private and loopback addresses (development and tests only). */
    allowPrivateNetwork: boolean
    fetchTimeoutMs: number
  }
  auth: {
    /** Accept generation A DPoP-bound requests as well as generation C request signatures. */
    acceptDpop: boolean
    /** Seconds an outbound service-auth token is reused for the same callee and method (0: never). */
    outboundTokenReuseSec: number
    /** Client attestations may not live longer than this (their jti is held until exp). */
    attestationMaxLifetimeSec: number
  }
  policy: {
    /** Space configs and authority statuses are reused this long (other processes' changes show within it). */
    configCacheMs: number
    managingAppTimeoutMs: number
    /** Reuse a managing app's definite answers this long; 0 (default) asks every time. */
    managingAppCacheMs: number
  }
  retention: {
    /** Issued credentials are kept this long after they expire (audit). */
    credentialsMs: number
    /** Dead letters are kept this long. */
    deadLettersMs: number
  }
  members: {
    /** Member-oplog entries older than this are compacted away (mirrors further behind resync). */
    oplogRetentionMs: number
  }
  authorities: {
    /** did:web hosts Gatehouse answers DID documents for (`example.com`, `localhost%3A8080`). */
    didWebHosts: string[]
    /** Who may create or adopt authorities over XRPC: everyone (`*`) or these DIDs. The CLI always may. */
    creators: '*' | string[]
  }
  notify: {
    /** How long a registerNotify lasts unless renewed. */
    registrationTtlMs: number
    relayConcurrency: number
    relayTimeoutMs: number
    relayRetryBaseMs: number
    /** After this, an undeliverable notification is dead-lettered and its lane moves on. */
    relayRetryWindowMs: number
    relayBreakerCooldownMs: number
    /** Deliveries of one space in flight at once: the rest of relayConcurrency stays for others. */
    relaySpaceConcurrency: number
    /** Live registerNotify registrations one space may have (renewals never count). */
    registrationsPerSpaceMax: number
    /** Live registrations made with one user's credentials, across all spaces. */
    registrationsPerUserMax: number
  }
}

export interface Secrets {
  /** The service's own did:web signing key (secp256k1, 32 bytes hex). Absent: kept under dataDir. */
  serviceKeyHex?: string
  /** The key-encryption key for keys at rest (32 bytes hex). Absent: kept under dataDir. */
  kekHex?: string
  /** Earlier KEKs still needed to open keys during a KEK rotation (GATEHOUSE_KEK_RETIRED). */
  retiredKekHex?: string[]
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`)
    this.name = 'ConfigError'
  }
}

export const ENV_PREFIX = 'GATEHOUSE_'

/** Variables that belong to tooling (tests, benchmarks, the Prisma CLI), not to the service. */
const TOOLING_PREFIXES = ['GATEHOUSE_TEST_', 'GATEHOUSE_BENCH_', 'GATEHOUSE_PRISMA_CLI_']

const port = z
  .string()
  .regex(/^\d+$/, 'must be an integer between 1 and 65535')
  .transform(Number)
  .pipe(
    z
      .number()
      .int()
      .min(1, 'must be between 1 and 65535')
      .max(65535, 'must be between 1 and 65535'),
  )

const int = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, `must be a whole number between ${min} and ${max}`)
    .transform(Number)
    .pipe(
      z
        .number()
        .int()
        .min(min, `must be between ${min} and ${max}`)
        .max(max, `must be between ${min} and ${max}`),
    )

// Never z.coerce.boolean(): it turns the string "false" into true.
const bool = z.stringbool({ truthy: ['true', '1', 'yes'], falsy: ['false', '0', 'no'] })

const httpUrl = z.string().refine((s) => {
  try {
    const u = new URL(s)
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.pathname === '/' && !u.search
  } catch {
    return false
  }
}, 'must be an http(s) origin such as https://gatehouse.example.com (no path)')

/** The raw variables, with their defaults. The README's configuration table mirrors this. */
export const envSchema = z.object({
  GATEHOUSE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  GATEHOUSE_HOST: z.string().min(1).default('127.0.0.1'),
  GATEHOUSE_PORT: port.default(2590),
  GATEHOUSE_PUBLIC_URL: httpUrl.optional(),
  GATEHOUSE_SERVICE_DID: z
    .string()
    .regex(/^did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]$/, 'must be a DID')
    .optional(),
  GATEHOUSE_DATA_DIR: z.string().min(1).default('./data'),
  GATEHOUSE_DATABASE_URL: z
    .string()
    .regex(/^(file:|postgres:\/\/|postgresql:\/\/)/, 'must be a file: path or a postgres:// URL')
    .optional(),
  GATEHOUSE_DATABASE_POOL_SIZE: int(1, 500).default(10),
  GATEHOUSE_SQLITE_BUSY_TIMEOUT_MS: int(0, 600_000).default(5000),
  GATEHOUSE_SQLITE_SYNCHRONOUS: z.enum(['normal', 'full']).default('normal'),
  GATEHOUSE_LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .default('info'),
  GATEHOUSE_BODY_LIMIT_BYTES: int(1024, 64 * 1024 * 1024).default(1024 * 1024),
  GATEHOUSE_RATE_LIMIT_PER_MINUTE: int(0, 10_000_000).default(6000),
  GATEHOUSE_TRUST_PROXY: bool.default(false),
  GATEHOUSE_SHUTDOWN_TIMEOUT_MS: int(0, 600_000).default(10_000),
  GATEHOUSE_SIGNING_THREADS: int(0, 64).default(1),
  GATEHOUSE_SIGNING_NONCES: int(0, 100_000).default(64),
  GATEHOUSE_VALIDATE_OUTPUT: bool.optional(),
  GATEHOUSE_REQUEST_TIMEOUT_MS: int(1000, 3_600_000).default(300_000),
  GATEHOUSE_MAX_CONNECTIONS: int(1, 1_000_000).default(900),
  GATEHOUSE_MAX_CONNECTIONS_PER_ADDRESS: int(1, 1_000_000).default(128),
  GATEHOUSE_PLC_URL: httpUrl.default('https://plc.directory'),
  GATEHOUSE_DID_CACHE_TTL_SEC: int(0, 86_400).default(600),
  GATEHOUSE_DID_CACHE_MAX_ENTRIES: int(1, 10_000_000).default(10_000),
  GATEHOUSE_DID_CACHE_MAX_BYTES: int(1024 * 1024, 1024 * 1024 * 1024).default(8 * 1024 * 1024),
  GATEHOUSE_DID_DOC_MAX_BYTES: int(1024, 1024 * 1024).default(32 * 1024),
  GATEHOUSE_ALLOW_PRIVATE_NETWORK: bool.default(false),
  GATEHOUSE_FETCH_TIMEOUT_MS: int(100, 60_000).default(3000),
  GATEHOUSE_ACCEPT_DPOP: bool.default(true),
  GATEHOUSE_SERVICE_AUTH_REUSE_SEC: int(0, 45).default(30),
  GATEHOUSE_ATTESTATION_MAX_LIFETIME_SEC: int(10, 3600).default(300),
  GATEHOUSE_CONFIG_CACHE_MS: int(0, 60_000).default(1000),
  GATEHOUSE_MANAGING_APP_TIMEOUT_MS: int(100, 30_000).default(2000),
  GATEHOUSE_MANAGING_APP_CACHE_SEC: int(0, 3600).default(0),
  GATEHOUSE_CREDENTIAL_RETENTION_DAYS: int(0, 36_500).default(7),
  GATEHOUSE_DEAD_LETTER_RETENTION_DAYS: int(0, 36_500).default(30),
  GATEHOUSE_RELAY_CONCURRENCY: int(1, 1024).default(32),
  GATEHOUSE_RELAY_TIMEOUT_MS: int(100, 60_000).default(5000),
  GATEHOUSE_RELAY_RETRY_BASE_MS: int(1, 600_000).default(1000),
  GATEHOUSE_RELAY_RETRY_WINDOW_SEC: int(1, 7 * 86_400).default(86_400),
  GATEHOUSE_RELAY_BREAKER_COOLDOWN_MS: int(0, 3_600_000).default(30_000),
  GATEHOUSE_RELAY_SPACE_CONCURRENCY: int(1, 1024).optional(),
  GATEHOUSE_REGISTRATION_TTL_SEC: int(60, 30 * 86_400).default(86_400),
  GATEHOUSE_REGISTRATIONS_PER_SPACE_MAX: int(1, 100_000).default(100),
  GATEHOUSE_REGISTRATIONS_PER_USER_MAX: int(1, 100_000).default(20),
  GATEHOUSE_OPLOG_RETENTION_DAYS: int(1, 36_500).default(30),
  GATEHOUSE_KEK: z
    .string()
    .regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex characters (a 32-byte key)')
    .optional(),
  GATEHOUSE_KEK_RETIRED: z
    .string()
    .regex(
      /^[0-9a-f]{64}(,[0-9a-f]{64})*$/,
      'must be a comma-separated list of 64-hex-character keys',
    )
    .optional(),
  GATEHOUSE_DID_WEB_HOSTS: z
    .string()
    .regex(
      /^[a-z0-9.-]+(%3A\d+)?(,[a-z0-9.-]+(%3A\d+)?)*$/,
      'must be a comma-separated list of host names (a port as %3A<port>)',
    )
    .optional(),
  GATEHOUSE_AUTHORITY_CREATORS: z
    .string()
    .regex(
      /^(\*|(did:[a-z]+:[a-zA-Z0-9._:%-]+(,did:[a-z]+:[a-zA-Z0-9._:%-]+)*))?$/,
      'must be * or a comma-separated list of DIDs',
    )
    .default(''),
  GATEHOUSE_SERVICE_KEY: z
    .string()
    .regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex characters (a secp256k1 private key)')
    .optional(),
})

export type EnvInput = Record<string, string | undefined>

/** `did:web` for an origin: the port's colon is percent-encoded, as did:web requires. */
export function didWebForUrl(url: string): string {
  const u = new URL(url)
  return `did:web:${u.hostname}${u.port ? `%3A${u.port}` : ''}`
}

/**
 * Parses the environment. Throws ConfigError naming the first bad variable; the message is one line.
 * Unknown GATEHOUSE_* variables are refused too: a typo should not silently fall back to a default.
 */
export function loadConfig(env: EnvInput, version = '0.0.0'): { config: Config; secrets: Secrets } {
  const known = new Set(Object.keys(envSchema.shape))
  for (const key of Object.keys(env)) {
    if (!key.startsWith(ENV_PREFIX) || known.has(key)) continue
    if (TOOLING_PREFIXES.some((p) => key.startsWith(p))) continue
    throw new ConfigError(key, 'unknown variable (see .env.example for the supported ones)')
  }
  const raw: Record<string, string> = {}
  for (const key of known) {
    const value = env[key]
    if (value !== undefined && value !== '') raw[key] = value
  }
  const parsed = envSchema.safeParse(raw)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!
    const variable = String(issue.path[0] ?? 'environment')
    const got = raw[variable]
    const secret =
      variable === 'GATEHOUSE_SERVICE_KEY' ||
      variable === 'GATEHOUSE_KEK' ||
      variable === 'GATEHOUSE_KEK_RETIRED'
    const shown = secret || got === undefined ? '' : ` (got "${got}")`
    throw new ConfigError(variable, `${issue.message}${shown}`)
  }
  const e = parsed.data
  const dataDir = resolve(e.GATEHOUSE_DATA_DIR)
  const publicUrl = (e.GATEHOUSE_PUBLIC_URL ?? `http://localhost:${e.GATEHOUSE_PORT}`).replace(
    /\/$/,
    '',
  )
  const dbUrl = e.GATEHOUSE_DATABASE_URL ?? `file:${resolve(dataDir, 'gatehouse.sqlite')}`
  const config: Config = {
    mode: e.GATEHOUSE_ENV,
    service: {
      host: e.GATEHOUSE_HOST,
      port: e.GATEHOUSE_PORT,
      publicUrl,
      did: e.GATEHOUSE_SERVICE_DID ?? didWebForUrl(publicUrl),
      version,
      dataDir,
      bodyLimitBytes: e.GATEHOUSE_BODY_LIMIT_BYTES,
      rateLimitPerMinute: e.GATEHOUSE_RATE_LIMIT_PER_MINUTE,
      trustProxy: e.GATEHOUSE_TRUST_PROXY,
      shutdownTimeoutMs: e.GATEHOUSE_SHUTDOWN_TIMEOUT_MS,
      signingThreads: e.GATEHOUSE_SIGNING_THREADS,
      signingNonces: e.GATEHOUSE_SIGNING_NONCES,
      validateOutput: e.GATEHOUSE_VALIDATE_OUTPUT ?? e.GATEHOUSE_ENV !== 'production',
      requestTimeoutMs: e.GATEHOUSE_REQUEST_TIMEOUT_MS,
      maxConnections: e.GATEHOUSE_MAX_CONNECTIONS,
      maxConnectionsPerAddress: e.GATEHOUSE_MAX_CONNECTIONS_PER_ADDRESS,
    },
    db: {
      kind: dbUrl.startsWith('file:') ? 'sqlite' : 'postgres',
      url: dbUrl,
      poolSize: e.GATEHOUSE_DATABASE_POOL_SIZE,
      busyTimeoutMs: e.GATEHOUSE_SQLITE_BUSY_TIMEOUT_MS,
      sqliteSynchronous: e.GATEHOUSE_SQLITE_SYNCHRONOUS,
    },
    log: { level: e.GATEHOUSE_LOG_LEVEL },
    identity: {
      plcUrl: e.GATEHOUSE_PLC_URL.replace(/\/$/, ''),
      didCacheTtlMs: e.GATEHOUSE_DID_CACHE_TTL_SEC * 1000,
      didCacheMaxEntries: e.GATEHOUSE_DID_CACHE_MAX_ENTRIES,
      didCacheMaxBytes: e.GATEHOUSE_DID_CACHE_MAX_BYTES,
      didDocMaxBytes: e.GATEHOUSE_DID_DOC_MAX_BYTES,
    },
    net: {
      allowPrivateNetwork: e.GATEHOUSE_ALLOW_PRIVATE_NETWORK,
      fetchTimeoutMs: e.GATEHOUSE_FETCH_TIMEOUT_MS,
    },
    auth: {
      acceptDpop: e.GATEHOUSE_ACCEPT_DPOP,
      outboundTokenReuseSec: e.GATEHOUSE_SERVICE_AUTH_REUSE_SEC,
      attestationMaxLifetimeSec: e.GATEHOUSE_ATTESTATION_MAX_LIFETIME_SEC,
    },
    policy: {
      configCacheMs: e.GATEHOUSE_CONFIG_CACHE_MS,
      managingAppTimeoutMs: e.GATEHOUSE_MANAGING_APP_TIMEOUT_MS,
      managingAppCacheMs: e.GATEHOUSE_MANAGING_APP_CACHE_SEC * 1000,
    },
    retention: {
      credentialsMs: e.GATEHOUSE_CREDENTIAL_RETENTION_DAYS * 86_400_000,
      deadLettersMs: e.GATEHOUSE_DEAD_LETTER_RETENTION_DAYS * 86_400_000,
    },
    members: { oplogRetentionMs: e.GATEHOUSE_OPLOG_RETENTION_DAYS * 86_400_000 },
    authorities: {
      didWebHosts: e.GATEHOUSE_DID_WEB_HOSTS ? e.GATEHOUSE_DID_WEB_HOSTS.split(',') : [],
      creators:
        e.GATEHOUSE_AUTHORITY_CREATORS === '*'
          ? '*'
          : e.GATEHOUSE_AUTHORITY_CREATORS.split(',').filter(Boolean),
    },
    notify: {
      registrationTtlMs: e.GATEHOUSE_REGISTRATION_TTL_SEC * 1000,
      relayConcurrency: e.GATEHOUSE_RELAY_CONCURRENCY,
      relayTimeoutMs: e.GATEHOUSE_RELAY_TIMEOUT_MS,
      relayRetryBaseMs: e.GATEHOUSE_RELAY_RETRY_BASE_MS,
      relayRetryWindowMs: e.GATEHOUSE_RELAY_RETRY_WINDOW_SEC * 1000,
      relayBreakerCooldownMs: e.GATEHOUSE_RELAY_BREAKER_COOLDOWN_MS,
      // A quarter of the slots by default: four spaces whose syncers all hang are needed to fill
      // the relay, and a space alone still has several deliveries in flight.
      relaySpaceConcurrency: Math.min(
        e.GATEHOUSE_RELAY_CONCURRENCY,
        e.GATEHOUSE_RELAY_SPACE_CONCURRENCY ??
          Math.max(1, Math.floor(e.GATEHOUSE_RELAY_CONCURRENCY / 4)),
      ),
      registrationsPerSpaceMax: e.GATEHOUSE_REGISTRATIONS_PER_SPACE_MAX,
      registrationsPerUserMax: e.GATEHOUSE_REGISTRATIONS_PER_USER_MAX,
    },
  }
  const secrets: Secrets = {}
  if (e.GATEHOUSE_SERVICE_KEY) secrets.serviceKeyHex = e.GATEHOUSE_SERVICE_KEY
  if (e.GATEHOUSE_KEK) secrets.kekHex = e.GATEHOUSE_KEK
  if (e.GATEHOUSE_KEK_RETIRED) secrets.retiredKekHex = e.GATEHOUSE_KEK_RETIRED.split(',')
  return { config, secrets }
}

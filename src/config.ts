import { join, resolve } from 'node:path'
import { z } from 'zod'
import { KEK_FILE } from './keys/vault.js'

/**
 * One declaration per GATEHOUSE_* variable (SCHEMA) gives the Config type, the parser and the docs
 * (scripts/config-docs.ts). Only bin.ts reads process.env; tests call `loadConfig({...})`.
 */

export type DatabaseKind = 'sqlite' | 'postgres'

/** A setting whose variable is unset takes its default, or is computed (by loadConfig, or none). */
type Fallback = 'default' | 'computed'

/** `default`: as written in the environment; for a computed setting, what the docs say instead. */
export interface Setting<T = unknown, F extends Fallback = Fallback> {
  readonly env: string
  readonly schema: z.ZodType<T>
  readonly fallback: F
  readonly default: string
}

const setting =
  <F extends Fallback>(fallback: F) =>
  <T>(env: string, schema: z.ZodType<T>, text: string) => ({ env, schema, fallback, default: text })
const v = setting('default')
const computed = setting('computed')

const SEC = 1000
const DAY = 86_400 * SEC
const KiB = 1024
const MiB = 1024 * KiB

/** An integer in [min, max]; `scale` converts it to the unit Config holds (seconds to ms: SEC). */
const int = (min: number, max: number, scale = 1) => {
  const inRange = (s: string) => /^\d+$/.test(s) && Number(s) >= min && Number(s) <= max
  return z
    .string()
    .refine(inRange, `must be an integer between ${min} and ${max}`)
    .transform((s) => Number(s) * scale)
    .meta({ values: `${min}–${max}` })
}

// Never z.coerce.boolean(): it turns the string "false" into true.
const bool = z
  .stringbool({ truthy: ['true', '1', 'yes'], falsy: ['false', '0', 'no'] })
  .meta({ values: 'true, false' })

const isOrigin = (s: string) => {
  const u = URL.parse(s)
  return (u?.protocol === 'http:' || u?.protocol === 'https:') && u.pathname === '/' && !u.search
}
const origin = z
  .string()
  .refine(isOrigin, 'must be an http(s) origin such as https://gatehouse.example.com (no path)')
  .transform((s) => s.replace(/\/$/, ''))

const did = z.string().regex(/^did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]$/, 'must be a DID')
const dbUrl = z
  .string()
  .regex(/^(file:|postgres:\/\/|postgresql:\/\/)/, 'must be a file: path or a postgres:// URL')
const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
const hex64 = (what: string) =>
  z.string().regex(/^[0-9a-f]{64}$/, `must be 64 lowercase hex characters (${what})`)

/** A comma-separated list of `item`s; '' is the empty list. */
const list = (item: string, message: string) =>
  z
    .string()
    .regex(new RegExp(`^(${item}(,${item})*)?$`), message)
    .transform((s) => s.split(',').filter(Boolean))
const hosts = list(
  '[a-z0-9.-]+(%3A\\d+)?',
  'must be a comma-separated list of host names (a port as %3A<port>)',
)
const hexList = list('[0-9a-f]{64}', 'must be a comma-separated list of 64-hex-character keys')
const DID = 'did:[a-z]+:[a-zA-Z0-9._:%-]+'
const creators = z
  .string()
  .regex(new RegExp(`^(\\*|${DID}(,${DID})*)?$`), 'must be * or a comma-separated list of DIDs')
  .transform((s) => (s === '*' ? ('*' as const) : s.split(',').filter(Boolean)))

/**
 * Every setting, in the nested shape Config has (`secrets` is split off into Secrets). The comment
 * on each is its line in docs/configuration.md; a name ends in its unit (_MS, _SEC, _DAYS, _BYTES).
 */
export const SCHEMA = {
  /** `production` turns output validation off and refuses what only development may do. */
  mode: v('GATEHOUSE_ENV', z.enum(['development', 'production', 'test']), 'development'),
  service: {
    /** Address to listen on. */
    host: v('GATEHOUSE_HOST', z.string().min(1), '127.0.0.1'),
    /** Port to listen on. */
    port: v('GATEHOUSE_PORT', int(1, 65535), '2590'),
    /** The origin peers reach this host at (no path); https in production. */
    publicUrl: computed('GATEHOUSE_PUBLIC_URL', origin, 'http://localhost:<port>'),
    /** The service's own DID; a did:web of this host is served at /.well-known/did.json. */
    did: computed('GATEHOUSE_SERVICE_DID', did, 'the did:web of the public URL'),
    /** Where Gatehouse keeps its files: SQLite database, service key, KEK file. */
    dataDir: v(
      'GATEHOUSE_DATA_DIR',
      z
        .string()
        .min(1)
        .transform((p) => resolve(p)),
      './data',
    ),
    /** Production: accept a KEK kept in `<data dir>/kek.key`, beside the keys it protects. */
    allowKekInDataDir: v('GATEHOUSE_ALLOW_KEK_IN_DATA_DIR', bool, 'false'),
    /** Largest request body accepted; larger ones get 413. */
    bodyLimitBytes: v('GATEHOUSE_BODY_LIMIT_BYTES', int(KiB, 64 * MiB), String(MiB)),
    /** Requests per minute per client address (0: no limit); health checks are exempt. */
    rateLimitPerMinute: v('GATEHOUSE_RATE_LIMIT_PER_MINUTE', int(0, 10_000_000), '6000'),
    /** Honour `X-Forwarded-*` headers from a reverse proxy. */
    trustProxy: v('GATEHOUSE_TRUST_PROXY', bool, 'false'),
    /** How long a graceful shutdown (SIGTERM, SIGINT) may take before the process exits anyway. */
    shutdownTimeoutMs: v('GATEHOUSE_SHUTDOWN_TIMEOUT_MS', int(0, 600_000), '10000'),
    /** Check every XRPC output against its schema (catches our own bugs; costs CPU). */
    validateOutput: computed('GATEHOUSE_VALIDATE_OUTPUT', bool, 'true, except in production'),
    /** Time to send a whole request, body included (bulk imports too); then 408 and close. */
    requestTimeoutMs: v('GATEHOUSE_REQUEST_TIMEOUT_MS', int(1000, 3_600_000), '300000'),
    /** Connections held open at once; more are closed on accept. Keep it under `ulimit -n`. */
    maxConnections: v('GATEHOUSE_MAX_CONNECTIONS', int(1, 1_000_000), '900'),
    /** Connections held at once from one client address (IPv6: a /64); raise it behind a proxy. */
    maxConnectionsPerAddress: v('GATEHOUSE_MAX_CONNECTIONS_PER_ADDRESS', int(1, 1_000_000), '128'),
  },
  db: {
    /** `file:` path (SQLite) or `postgres://` URL (PostgreSQL; `?schema=` picks a schema). */
    url: computed('GATEHOUSE_DATABASE_URL', dbUrl, 'file:<data dir>/gatehouse.sqlite'),
    /** PostgreSQL connection pool size. */
    poolSize: v('GATEHOUSE_DATABASE_POOL_SIZE', int(1, 500), '10'),
    /** SQLite: how long a write waits for another process's lock. */
    busyTimeoutMs: v('GATEHOUSE_SQLITE_BUSY_TIMEOUT_MS', int(0, 600_000), '5000'),
    /** SQLite: `normal` (a power cut may lose the last commits) or `full` (fsync per commit). */
    sqliteSynchronous: v('GATEHOUSE_SQLITE_SYNCHRONOUS', z.enum(['normal', 'full']), 'normal'),

    /** Several processes on PostgreSQL: how long a dead one's leases hold its work (the relay's, the janitor's). */
    leaseMs: v('GATEHOUSE_LEASE_SEC', int(2, 600, SEC), '30'),
  },
  log: {
    /** Log level. */
    level: v('GATEHOUSE_LOG_LEVEL', z.enum([...LEVELS]), 'info'),
  },
  identity: {
    /** PLC directory for did:plc (only its own client may reach it on a private network). */
    plcUrl: v('GATEHOUSE_PLC_URL', origin, 'https://plc.directory'),
    /** How long a resolved DID document is reused. */
    didCacheTtlMs: v('GATEHOUSE_DID_CACHE_TTL_SEC', int(0, 86_400, SEC), '600'),
    /** DID documents cached (least recently used dropped first). */
    didCacheMaxEntries: v('GATEHOUSE_DID_CACHE_MAX_ENTRIES', int(1, 10_000_000), '10000'),
    /** Total size of the cached DID documents (least recently used dropped first). */
    didCacheMaxBytes: v('GATEHOUSE_DID_CACHE_MAX_BYTES', int(MiB, 1024 * MiB), String(8 * MiB)),
    /** Larger DID documents are refused (their issuer cannot be resolved: 401 BadJwtIss). */
    didDocMaxBytes: v('GATEHOUSE_DID_DOC_MAX_BYTES', int(KiB, MiB), String(32 * KiB)),
  },
  net: {
    /** Let outbound requests reach private and loopback addresses: development and tests only. */
    allowPrivateNetwork: v('GATEHOUSE_ALLOW_PRIVATE_NETWORK', bool, 'false'),
    /** Timeout of every outbound request. */
    fetchTimeoutMs: v('GATEHOUSE_FETCH_TIMEOUT_MS', int(100, 60_000), '3000'),
  },
  auth: {
    /** Also accept generation A (DPoP-bound) requests. */
    acceptDpop: v('GATEHOUSE_ACCEPT_DPOP', bool, 'true'),
    /** Reuse an outbound service-auth token for the same callee and method this long (0: never). */
    outboundTokenReuseSec: v('GATEHOUSE_SERVICE_AUTH_REUSE_SEC', int(0, 45), '30'),
    /** Client attestations living longer are refused (their jti is held until exp). */
    attestationMaxLifetimeSec: v('GATEHOUSE_ATTESTATION_MAX_LIFETIME_SEC', int(10, 3600), '300'),
  },
  policy: {
    /** Space configs and authority statuses are cached this long (own changes apply at once). */
    configCacheMs: v('GATEHOUSE_CONFIG_CACHE_MS', int(0, 60_000), '1000'),
    /** A managing app's checkUserAccess must answer within this, or the user is refused. */
    managingAppTimeoutMs: v('GATEHOUSE_MANAGING_APP_TIMEOUT_MS', int(100, 30_000), '2000'),
    /** Reuse a managing app's definite answers this long (0: ask every time). */
    managingAppCacheMs: v('GATEHOUSE_MANAGING_APP_CACHE_SEC', int(0, 3600, SEC), '0'),
  },
  retention: {
    /** Issued credentials are kept this long after they expire (audit), then pruned. */
    credentialsMs: v('GATEHOUSE_CREDENTIAL_RETENTION_DAYS', int(0, 36_500, DAY), '7'),
    /** Dead letters are kept this long, then pruned. */
    deadLettersMs: v('GATEHOUSE_DEAD_LETTER_RETENTION_DAYS', int(0, 36_500, DAY), '30'),
    /** Decided join requests are kept this long after the decision (the requester reads it), then pruned. */
    joinRequestsMs: v('GATEHOUSE_JOIN_REQUEST_RETENTION_DAYS', int(1, 36_500, DAY), '30'),
  },
  members: {
    /** Member-oplog history kept; an older `since` gets OplogCompacted (the mirror resyncs). */
    oplogRetentionMs: v('GATEHOUSE_OPLOG_RETENTION_DAYS', int(1, 36_500, DAY), '30'),
    /** Join requests one DID may make in an hour, across spaces (more: 429 RateLimitExceeded). */
    joinRequestsPerHourMax: v('GATEHOUSE_JOIN_REQUESTS_PER_HOUR_MAX', int(1, 10_000), '10'),
  },
  authorities: {
    /** Hosts served did:web authority documents for (`forum.example.com`; a port as `%3A8080`). */
    didWebHosts: v('GATEHOUSE_DID_WEB_HOSTS', hosts, ''),
    /** Who may create or adopt authorities over XRPC: `*` or DIDs (the CLI always may). */
    creators: v('GATEHOUSE_AUTHORITY_CREATORS', creators, ''),
  },
  managers: {
    /** A manager's login session ends after this long without a request. */
    sessionIdleMs: v('GATEHOUSE_SESSION_IDLE_SEC', int(60, 30 * 86_400, SEC), '86400'),
    /** A manager's login session ends this long after the login, however active. */
    sessionMaxAgeMs: v('GATEHOUSE_SESSION_MAX_AGE_SEC', int(60, 365 * 86_400, SEC), '2592000'),
  },
  notify: {
    /** How long a registerNotify lasts unless renewed. */
    registrationTtlMs: v('GATEHOUSE_REGISTRATION_TTL_SEC', int(60, 30 * 86_400, SEC), '86400'),
    /** Syncer lanes delivered in parallel. */
    relayConcurrency: v('GATEHOUSE_RELAY_CONCURRENCY', int(1, 1024), '32'),
    /** Timeout of one delivery. */
    relayTimeoutMs: v('GATEHOUSE_RELAY_TIMEOUT_MS', int(100, 60_000), '5000'),
    /** First retry delay of a lane (doubles, with jitter, up to an hour). */
    relayRetryBaseMs: v('GATEHOUSE_RELAY_RETRY_BASE_MS', int(1, 600_000), '1000'),
    /** How long a notification is retried before it is dead-lettered and its lane moves on. */
    relayRetryWindowMs: v('GATEHOUSE_RELAY_RETRY_WINDOW_SEC', int(1, 7 * 86_400, SEC), '86400'),
    /** An endpoint that failed 5 times in a row is skipped this long. */
    relayBreakerCooldownMs: v('GATEHOUSE_RELAY_BREAKER_COOLDOWN_MS', int(0, 3_600_000), '30000'),
    /** One space's deliveries in flight (at most RELAY_CONCURRENCY); the rest serve others. */
    relaySpaceConcurrency: computed(
      'GATEHOUSE_RELAY_SPACE_CONCURRENCY',
      int(1, 1024),
      'RELAY_CONCURRENCY / 4',
    ),
    /** Live registerNotify registrations one space may have (renewals never count). */
    registrationsPerSpaceMax: v('GATEHOUSE_REGISTRATIONS_PER_SPACE_MAX', int(1, 100_000), '100'),
    /** Live registerNotify registrations made with one user's credentials, across spaces. */
    registrationsPerUserMax: v('GATEHOUSE_REGISTRATIONS_PER_USER_MAX', int(1, 100_000), '20'),
  },
  rateLimits: {
    /** getSpaceCredential calls per minute by one user DID, per process (0: no limit). */
    credentialsPerUser: v('GATEHOUSE_CREDENTIALS_PER_USER_PER_MINUTE', int(0, 10_000_000), '120'),
    /** getSpaceCredential calls per minute with one attested client id, per process (0: none). */
    credentialsPerClient: v(
      'GATEHOUSE_CREDENTIALS_PER_CLIENT_PER_MINUTE',
      int(0, 10_000_000),
      '12000',
    ),
    /** notifyWrite calls per minute for one repo (writer DID), per process (0: no limit). */
    notifyPerRepo: v('GATEHOUSE_NOTIFY_PER_REPO_PER_MINUTE', int(0, 10_000_000), '600'),
    /** notifyWrite calls per minute from one repo host (the writer's PDS), per process (0: none). */
    notifyPerRepoHost: v('GATEHOUSE_NOTIFY_PER_REPO_HOST_PER_MINUTE', int(0, 10_000_000), '60000'),
    /** registerNotify calls per minute per service and credential holder, per process (0: none). */
    registrationsPerService: v(
      'GATEHOUSE_REGISTER_NOTIFY_PER_SERVICE_PER_MINUTE',
      int(0, 10_000_000),
      '60',
    ),
    /** Logins started (manager, invite and join pages) and callbacks per minute per address. */
    loginsPerAddress: v('GATEHOUSE_LOGINS_PER_ADDRESS_PER_MINUTE', int(0, 10_000_000), '30'),
    /** REST API calls per minute by one API token or login session, per process (0: no limit). */
    restPerPrincipal: v('GATEHOUSE_REST_PER_PRINCIPAL_PER_MINUTE', int(0, 10_000_000), '1200'),
  },
  metrics: {
    /** Serve Prometheus metrics at `/metrics` on this port, without auth (0: no such port). */
    port: v('GATEHOUSE_METRICS_PORT', int(0, 65535), '0'),
    /** Address of the metrics port: keep it off the public network. */
    host: v('GATEHOUSE_METRICS_HOST', z.string().min(1), '127.0.0.1'),
  },
  secrets: {
    /** A bearer token that opens `/metrics` on the main port (else it is not served there). */
    metricsToken: computed(
      'GATEHOUSE_METRICS_TOKEN',
      z
        .string()
        .regex(/^[\x21-\x7e]{32,256}$/, 'must be 32 to 256 printable characters, no spaces'),
      'none',
    ),
    /** The service's signing key (secp256k1, hex); else kept in `<data dir>/service-key.json`. */
    serviceKeyHex: computed('GATEHOUSE_SERVICE_KEY', hex64('a secp256k1 private key'), 'generated'),
    /** Key-encryption key for keys at rest (hex); else kept in `<data dir>/kek.key`. */
    kekHex: computed('GATEHOUSE_KEK', hex64('a 32-byte key'), 'generated'),
    /** Earlier KEKs (comma-separated hex) needed until `gatehouse kek rewrap` has re-sealed. */
    retiredKekHex: computed('GATEHOUSE_KEK_RETIRED', hexList, 'none'),
    /** Passphrase of `gatehouse authority export|import` without `--passphrase-file` (12+ characters). */
    exportPassphrase: computed('GATEHOUSE_EXPORT_PASSPHRASE', z.string().min(12), 'none'),
  },
}

/** The value type of a tree of settings; `Draft`: computed ones not filled in yet. */
type Values<T, Draft = false> =
  T extends Setting<infer V, infer F>
    ? [F, Draft] extends ['computed', true]
      ? V | undefined
      : V
    : { [K in keyof T]: Values<T[K], Draft> }

type Parsed<Draft = false> = Values<typeof SCHEMA, Draft>

export type Config = Omit<Parsed, 'secrets'> & {
  service: { version: string }
  db: { kind: DatabaseKind }
}
export type Secrets = Partial<Parsed['secrets']>

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`)
    this.name = 'ConfigError'
  }
}

/** Variables that belong to tooling (tests, benchmarks, the Prisma CLI), not to the service. */
const TOOLING_PREFIXES = ['GATEHOUSE_TEST_', 'GATEHOUSE_BENCH_', 'GATEHOUSE_PRISMA_CLI_']

type Tree = { [key: string]: Tree | Setting }
type Env = Record<string, string | undefined>
const isSetting = (node: Tree | Setting): node is Setting => typeof node.env === 'string'
const leaves = (tree: Tree): Setting[] =>
  Object.values(tree).flatMap((node) => (isSetting(node) ? [node] : leaves(node)))

/** Every setting, in declaration order (docs/configuration.md and .env.example follow it). */
export const SETTINGS: readonly Setting[] = leaves(SCHEMA)
const KNOWN = new Set(SETTINGS.map((s) => s.env))
const SECRET = new Set(leaves(SCHEMA.secrets))

/** `did:web` for an origin: the port's colon is percent-encoded, as did:web requires. */
export function didWebForUrl(url: string): string {
  const u = new URL(url)
  return `did:web:${u.hostname}${u.port ? `%3A${u.port}` : ''}`
}

/** One variable's value; an empty variable counts as unset. */
function read(s: Setting, env: Env): unknown {
  const given = env[s.env] || undefined
  const text = given ?? (s.fallback === 'default' ? s.default : undefined)
  if (text === undefined) return undefined
  const parsed = s.schema.safeParse(text)
  if (parsed.success) return parsed.data
  const shown = given === undefined || SECRET.has(s) ? '' : ` (got "${given}")`
  throw new ConfigError(s.env, `${parsed.error.issues[0]!.message}${shown}`)
}

function readTree(tree: Tree, env: Env): object {
  return Object.fromEntries(
    Object.entries(tree).map(([k, n]) => [k, isSetting(n) ? read(n, env) : readTree(n, env)]),
  )
}

/**
 * Parses the environment; throws a one-line ConfigError naming the first bad variable. Unknown
 * GATEHOUSE_* variables are refused too: a typo should not silently fall back to a default.
 */
export function loadConfig(env: Env, version = '0.0.0'): { config: Config; secrets: Secrets } {
  for (const key of Object.keys(env)) {
    if (!key.startsWith('GATEHOUSE_') || KNOWN.has(key)) continue
    if (TOOLING_PREFIXES.some((p) => key.startsWith(p))) continue
    throw new ConfigError(key, 'unknown variable (see .env.example for the supported ones)')
  }
  const { secrets, ...draft } = readTree(SCHEMA, env) as Parsed<true>
  const { service, db, notify } = draft
  const publicUrl = service.publicUrl ?? `http://localhost:${service.port}`
  const url = db.url ?? `file:${resolve(service.dataDir, 'gatehouse.sqlite')}`
  const config: Config = {
    ...draft,
    service: {
      ...service,
      publicUrl,
      did: service.did ?? didWebForUrl(publicUrl),
      version,
      validateOutput: service.validateOutput ?? draft.mode !== 'production',
    },
    db: { ...db, url, kind: url.startsWith('file:') ? 'sqlite' : 'postgres' },
    notify: {
      ...notify,
      // A quarter of the slots by default: four spaces whose syncers all hang are needed to fill
      // the relay, and a space alone still has several deliveries in flight.
      relaySpaceConcurrency: Math.min(
        notify.relayConcurrency,
        notify.relaySpaceConcurrency ?? Math.max(1, Math.floor(notify.relayConcurrency / 4)),
      ),
    },
  }
  if (config.mode === 'production') refuseInProduction(config, secrets)
  const set = Object.entries(secrets).filter(([, value]) => value !== undefined)
  return { config, secrets: Object.fromEntries(set) }
}

/** What production will not run with, each refusal naming its variable. */
function refuseInProduction(config: Config, secrets: Secrets): void {
  const { publicUrl: url, allowKekInDataDir, dataDir } = config.service
  if (!url.startsWith('https://'))
    throw new ConfigError('GATEHOUSE_PUBLIC_URL', `must be https in production (got "${url}")`)
  if (config.net.allowPrivateNetwork)
    throw new ConfigError('GATEHOUSE_ALLOW_PRIVATE_NETWORK', 'must not be true in production')
  if (!secrets.kekHex && !allowKekInDataDir) {
    const why = `${join(dataDir, KEK_FILE)} would sit beside the keys it protects`
    const accept = 'GATEHOUSE_ALLOW_KEK_IN_DATA_DIR=true accepts that'
    throw new ConfigError('GATEHOUSE_KEK', `must be set in production (${why}; ${accept})`)
  }
}

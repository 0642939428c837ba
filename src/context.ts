import { randomUUID } from 'node:crypto'
import { AuditLog } from './audit/audit-log.js'
import { AuthorityService } from './authorities/authority-service.js'
import { OutboundAuth } from './auth/outbound.js'
import { AuthorityLifecycle } from './authorities/lifecycle.js'
import { AuthorityExport } from './authorities/export.js'
import { ManagerService } from './authorities/managers.js'
import { ApiTokenService } from './managers/tokens.js'
import { PlcClient, plcDirectoryService } from './authorities/plc.js'
import { AuthVerifier } from './auth/verifier.js'
import { ReplayStore } from './auth/replay.js'
import { RevocationStore } from './auth/revocations.js'
import { Janitor } from './janitor.js'
import { ManagerOAuth } from './managers/oauth-client.js'
import { SessionService } from './managers/sessions.js'
import { systemClock, type Clock } from './clock.js'
import type { Config, Secrets } from './config.js'
import { Db } from './db/client.js'
import { Leases } from './db/leases.js'
import { migrate } from './db/migrate.js'
import { createLogger, subsystem, type Logger } from './logger.js'
import { ClientAttestationVerifier } from './identity/attestation.js'
import { DidResolver } from './identity/resolver.js'
import { loadKeyring, vaultFor, type KeyVault } from './keys/vault.js'
import type { AuthorizeDeps } from './policy/authorize.js'
import { ManagingAppClient } from './policy/managing-app.js'
import { PolicyRegistry } from './policy/registry.js'
import { NotifyService } from './notify/notify-service.js'
import { DeliveryTally } from './notify/delivery-tally.js'
import { Relay } from './notify/relay.js'
import { Metrics } from './metrics.js'
import { CredentialService } from './spaces/credentials.js'
import { CredentialTally } from './spaces/tally.js'
import { SpaceManager } from './spaces/manager.js'
import { AdmissionService } from './spaces/admission.js'
import { getHostedSpace } from './spaces/hosted.js'
import { SpaceService } from './spaces/space-service.js'
import { SafeFetcher } from './net/safe-fetch.js'
import { loadServiceKey, ServiceIdentity } from './service-identity.js'

/**
 * Everything a handler or service may reach, built once and handed to Fastify once. Domain code
 * takes the narrow pieces it needs from here, never the whole context or the Fastify request.
 */
export interface AppContext {
  cfg: Config
  logger: Logger
  clock: Clock
  db: Db
  identity: ServiceIdentity
  /** Random id of this installation, kept in the database. */
  instanceId: string
  /** Outbound HTTP, SSRF-guarded. */
  fetcher: SafeFetcher
  idResolver: DidResolver
  replay: ReplayStore
  revocations: RevocationStore
  auth: AuthVerifier
  vault: KeyVault
  authorities: AuthorityService
  /** Creating, adopting, rotating and handing over authority DIDs. */
  lifecycle: AuthorityLifecycle
  /** Moving an authority between hosts: a sealed export, and its import. */
  authorityExport: AuthorityExport
  managers: ManagerService
  /** The hash-chained audit log of management actions and refusals. */
  audit: AuditLog
  tokens: ApiTokenService
  /** Managers' login sessions (the cookie, its CSRF token, idle and absolute expiry). */
  sessions: SessionService
  /** Gatehouse as the OAuth client managers log in through; built on first use. */
  oauth: ManagerOAuth
  spaces: SpaceService
  notify: NotifyService
  /** Delivers write notifications and revocation notices; bin.ts starts it. */
  relay: Relay
  /** Prunes what no rule needs any more; runs every few minutes. */
  janitor: Janitor
  /** Service auth for outbound calls, signed as an authority and reused (auth/outbound.ts). */
  outbound: OutboundAuth
  credentials: CredentialService
  /** Credentials issued and refused per space and day (the audit log's daily summary). */
  tally: CredentialTally
  /** Prometheus metrics (`/metrics`, when the configuration opens it). */
  metrics: Metrics
  /** Notification deliveries and failures per registration and day (the dashboard's chart). */
  deliveries: DeliveryTally
  manager: SpaceManager
  /** Invites, join requests and bans. */
  admission: AdmissionService
  attestations: ClientAttestationVerifier
  managingApps: ManagingAppClient
  /** What the policy layer may ask (membership, managing apps). */
  policyDeps: AuthorizeDeps
  presets: PolicyRegistry
  /** Stops the relay and the janitor, then closes the database. Idempotent. */
  destroy(): Promise<void>
}

const PRUNE_INTERVAL_MS = 5 * 60_000
/** How often the credential tally reaches the database: what a crash may lose of the counts. */
const TALLY_FLUSH_MS = 10_000
/**
 * The delivery tally's: it has a key per busy syncer (a thousand rows a flush on a big host), and a
 * chart of days needs no fresher numbers; every 10 s its flushes cost the relay a tenth of its pace.
 */
const DELIVERY_FLUSH_MS = 60_000

export interface ContextOptions {
  /** Replace parts, as tests and the KEK commands do. */
  overrides?: Partial<Pick<AppContext, 'logger' | 'clock' | 'db' | 'instanceId' | 'vault'>>
  /** Apply pending migrations before opening the database (default true). */
  migrate?: boolean
}

export async function createContext(
  cfg: Config,
  secrets: Secrets,
  opts: ContextOptions = {},
): Promise<AppContext> {
  const overrides = opts.overrides ?? {}
  const logger = overrides.logger ?? createLogger({ level: cfg.log.level })
  const dbLog = subsystem(logger, 'db')
  if (opts.migrate !== false && !overrides.db) {
    const applied = await migrate(cfg.db.kind, cfg.db.url)
    if (applied.length) dbLog.info({ applied }, 'applied database migrations')
  }
  const db = overrides.db ?? (await Db.open(cfg.db))
  const clock = overrides.clock ?? systemClock
  const identity = new ServiceIdentity(
    cfg.service.did,
    cfg.service.publicUrl,
    loadServiceKey(cfg, secrets),
  )
  const instanceId = overrides.instanceId ?? (await recordBoot(db, cfg.service.version, clock))
  const fetchOptions = {
    allowPrivate: cfg.net.allowPrivateNetwork,
    timeoutMs: cfg.net.fetchTimeoutMs,
    maxBytes: 1024 * 1024,
    userAgent: `gatehouse/${cfg.service.version}`,
  }
  const fetcher = new SafeFetcher(fetchOptions)
  // The PLC directory is the operator's choice, so it is reachable wherever it runs, a private
  // network included: but only by its own client (PlcClient, did:plc resolution) and only for the
  // DID paths it serves. Every other fetch (client metadata, syncers, managing apps, repo hosts)
  // treats its host like any other address, so a URL there cannot borrow the trust.
  const plcFetcher = new SafeFetcher({
    ...fetchOptions,
    trusted: plcDirectoryService(cfg.identity.plcUrl),
  })
  const idResolver = new DidResolver(fetcher, clock, {
    plcUrl: cfg.identity.plcUrl,
    plcFetcher,
    cacheTtlMs: cfg.identity.didCacheTtlMs,
    cacheMaxEntries: cfg.identity.didCacheMaxEntries,
    cacheMaxBytes: cfg.identity.didCacheMaxBytes,
    maxDocumentBytes: cfg.identity.didDocMaxBytes,
  })
  const replay = new ReplayStore(db, clock)
  const revocations = new RevocationStore(db)
  const auth = new AuthVerifier({
    resolver: idResolver,
    replay,
    revocations,
    clock,
    publicUrl: cfg.service.publicUrl,
    acceptDpop: cfg.auth.acceptDpop,
    spaceSinceSec: (uri) => spaces.instanceSinceSec(uri),
  })
  const presets = PolicyRegistry.load()
  const vault =
    overrides.vault ??
    vaultFor(loadKeyring(cfg.service.dataDir, secrets.kekHex, secrets.retiredKekHex))
  const authorities = new AuthorityService(db, vault, clock, cfg.policy.configCacheMs)
  const audit = new AuditLog(db, clock, (err) =>
    dbLog.error({ err }, 'audit: a refusal could not be recorded'),
  )
  const managers = new ManagerService(db, clock, audit)
  const sessions = new SessionService(db, clock, {
    idleMs: cfg.managers.sessionIdleMs,
    maxAgeMs: cfg.managers.sessionMaxAgeMs,
  })
  const oauth = new ManagerOAuth({ cfg, db, vault, clock, fetcher, authorities })
  const outbound = new OutboundAuth(clock, cfg.auth.outboundTokenReuseSec)
  const lifecycle = new AuthorityLifecycle({
    db,
    audit,
    authorities,
    managers,
    plc: new PlcClient(plcFetcher, cfg.identity.plcUrl),
    resolver: idResolver,
    clock,
    logger: logger.child({ component: 'authorities' }),
    publicUrl: cfg.service.publicUrl,
    didWebHosts: cfg.authorities.didWebHosts,
    serviceDid: cfg.service.did,
  })
  const spaces = new SpaceService(db, clock, audit, cfg.policy.configCacheMs)
  const notify = new NotifyService(db, clock, {
    registrationsPerSpace: cfg.notify.registrationsPerSpaceMax,
    registrationsPerUser: cfg.notify.registrationsPerUserMax,
  })
  const credentials = new CredentialService({
    db,
    authorities,
    clock,
    audit,
    onQueued: () => relay.wake(),
  })
  const deliveries = new DeliveryTally(db, clock)
  deliveries.start(DELIVERY_FLUSH_MS, (err) =>
    dbLog.warn({ err }, 'delivery tally flush failed; kept for the next'),
  )
  const leases = new Leases(db, clock, cfg.db.leaseMs)
  const relay = new Relay(
    {
      db,
      leases,
      deliveries,
      audit,
      resolver: idResolver,
      fetcher,
      authorities,
      clock,
      logger: subsystem(logger, 'notify'),
      outbound,
    },
    cfg.notify,
  )
  notify.onEvent = () => relay.wake()
  const metrics = new Metrics({
    db,
    clock,
    breakers: () => relay.breakerStates(),
    token: secrets.metricsToken,
  })
  relay.onDelivery = (method, outcome) => metrics.deliveries.inc({ method, outcome })
  const manager = new SpaceManager(spaces, credentials)
  const admission = new AdmissionService({
    db,
    audit,
    clock,
    manager,
    credentials,
    hosted: (uri) => getHostedSpace({ authorities, spaces }, uri),
    requestsPerHour: cfg.members.joinRequestsPerHourMax,
    onForward: () => relay.wake(),
  })
  const attestations = new ClientAttestationVerifier({
    fetcher,
    replay,
    clock,
    cacheTtlMs: 3_600_000,
    cacheMaxEntries: 500,
    maxLifetimeSec: cfg.auth.attestationMaxLifetimeSec,
  })
  const managingApps = new ManagingAppClient({
    resolver: idResolver,
    fetcher,
    authorityKey: (did) => authorities.key(did, 'atproto'),
    clock,
    outbound,
    logger: subsystem(logger, 'policy'),
    timeoutMs: cfg.policy.managingAppTimeoutMs,
    cacheTtlMs: cfg.policy.managingAppCacheMs,
  })
  const policyDeps: AuthorizeDeps = {
    isMember: (space, did, access) => spaces.members.isMember(space, did, access),
    checkUserAccess: (req) => managingApps.checkUserAccess(req),
  }
  const tally = new CredentialTally(db, clock)
  tally.start(TALLY_FLUSH_MS, (err) =>
    dbLog.warn({ err }, 'credential tally flush failed; kept for the next'),
  )
  const janitor = new Janitor(db, clock, leases, cfg, {
    nonces: () => replay.prune(),
    ops: () => spaces.members.compactAll(new Date(clock.nowMs() - cfg.members.oplogRetentionMs)),
    credentialDays: () => tally.summarise(audit),
    deliveryDays: () => deliveries.prune(),
  })
  janitor.start(PRUNE_INTERVAL_MS, dbLog)

  let destroyed: Promise<void> | undefined
  const ctx: AppContext = {
    cfg,
    logger,
    clock,
    db,
    identity,
    instanceId,
    fetcher,
    idResolver,
    replay,
    revocations,
    auth,
    vault,
    authorities,
    lifecycle,
    authorityExport: new AuthorityExport({
      db,
      audit,
      authorities,
      clock,
      from: { did: cfg.service.did, url: cfg.service.publicUrl },
    }),
    managers,
    audit,
    tokens: new ApiTokenService(db, clock, audit),
    sessions,
    oauth,
    spaces,
    notify,
    relay,
    janitor,
    outbound,
    credentials,
    tally,
    metrics,
    deliveries,
    manager,
    admission,
    attestations,
    managingApps,
    policyDeps,
    presets,
    destroy() {
      destroyed ??= (async () => {
        await relay.stop()
        await janitor.stop()
        await tally.stop().catch((err: unknown) => dbLog.error({ err }, 'tally flush failed'))
        await deliveries
          .stop()
          .catch((err: unknown) => dbLog.error({ err }, 'delivery tally flush failed'))
        await Promise.all([fetcher.close(), plcFetcher.close()])
        await db.close()
      })()
      return destroyed
    },
  }
  return ctx
}

/** Reads (or on first start, creates) the installation id, and notes the version that booted. */
async function recordBoot(db: Db, version: string, clock: Clock): Promise<string> {
  return db.transact(async (tx) => {
    const now = clock.now()
    // upsert with an empty update: the first process to boot picks the id, later ones read it.
    const { value: id } = await tx.instanceMeta.upsert({
      where: { key: 'instance_id' },
      create: { key: 'instance_id', value: randomUUID(), updatedAt: now },
      update: {},
    })
    await tx.instanceMeta.upsert({
      where: { key: 'booted_version' },
      create: { key: 'booted_version', value: version, updatedAt: now },
      update: { value: version, updatedAt: now },
    })
    return id
  })
}

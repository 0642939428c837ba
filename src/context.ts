import { randomUUID } from 'node:crypto'
import { BackgroundQueue } from './background.js'
import { systemClock, type Clock } from './clock.js'
import type { Config, Secrets } from './config.js'
import { Db } from './db/client.js'
import { migrate } from './db/migrate.js'
import { createLogger, subsystem, type Logger } from './logger.js'
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
  background: BackgroundQueue
  identity: ServiceIdentity
  /** Random id of this installation, kept in the database. */
  instanceId: string
  /** Drains background work, then closes the database. Idempotent. */
  destroy(): Promise<void>
}

export interface ContextOptions {
  /** Replace parts (logger, clock, …), as tests do. Spread last. */
  overrides?: Partial<Omit<AppContext, 'destroy'>>
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
  const identity =
    overrides.identity ??
    new ServiceIdentity(cfg.service.did, cfg.service.publicUrl, loadServiceKey(cfg, secrets))
  const instanceId = overrides.instanceId ?? (await recordBoot(db, cfg.service.version, clock))
  const background = overrides.background ?? new BackgroundQueue(subsystem(logger, 'background'))

  let destroyed: Promise<void> | undefined
  const ctx: AppContext = {
    cfg,
    logger,
    clock,
    db,
    background,
    identity,
    instanceId,
    ...overrides,
    destroy() {
      destroyed ??= (async () => {
        await background.destroy()
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

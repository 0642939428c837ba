import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { didWebForRequest, didWebLocation } from './authorities/did-web.js'
import type { AppContext } from './context.js'
import { ServiceUnavailableError, XrpcError } from './errors.js'
import { pendingMigrations, readMigrations } from './db/migrate.js'

/** Liveness, readiness and DID documents: outside the XRPC router and its rate limit. */
export function registerHealth(app: FastifyInstance, ctx: AppContext): void {
  const noLimit = { rateLimit: false as const }

  /** Liveness: the process answers. Never touches the database. */
  app.get('/xrpc/_health', { config: noLimit }, async () => ({ version: ctx.cfg.service.version }))

  /**
   * Readiness: the database answers, and its schema is this release's: 503 while a migration of
   * ours is not applied, or the database has one this release does not know (a newer process
   * migrated it), so load balancers route around us.
   */
  const shipped = readMigrations(ctx.db.kind)
  app.get('/xrpc/_ready', { config: noLimit }, async () => {
    let applied: { name: string; checksum: string }[]
    try {
      applied = await ctx.db.prisma.$queryRawUnsafe(
        'SELECT name, checksum FROM gatehouse_migration',
      )
    } catch (err) {
      throw new ServiceUnavailableError('Database is not reachable', { cause: err })
    }
    // Which migrations goes to the log (the error's cause), not to whoever asks.
    const notOurs = (detail: string) =>
      new ServiceUnavailableError('The database schema is not this release’s', {
        cause: new Error(detail),
      })
    let pending: string[]
    try {
      pending = pendingMigrations(shipped, applied).map((m) => m.name)
    } catch (err) {
      throw notOurs((err as Error).message)
    }
    if (pending.length) throw notOurs(`migrations pending: ${pending.join(', ')}`)
    return { ready: true, version: ctx.cfg.service.version, db: ctx.db.kind }
  })

  /** A did:web authority's on a GATEHOUSE_DID_WEB_HOSTS host (by Host and path), else our own. */
  const didDocument = async (req: FastifyRequest, reply: FastifyReply) => {
    const path = req.url.split('?', 1)[0]!
    const did = didWebForRequest(req.headers.host ?? '', path)
    const loc = did ? didWebLocation(did) : undefined
    let doc: object | undefined
    if (did && loc && ctx.cfg.authorities.didWebHosts.includes(loc.host))
      doc = await ctx.lifecycle.webDocument(did)
    if (!doc && path === '/.well-known/did.json') doc = ctx.identity.didDocument()
    if (!doc)
      return reply.code(404).send({ error: 'NotFound', message: 'No did:web document here' })
    return reply.header('content-type', 'application/did+json').send(JSON.stringify(doc))
  }
  app.get('/.well-known/did.json', { config: noLimit }, didDocument)
  // Rate limited like everything else: any path ending in did.json may cost a database read.
  app.get('/*', async (req, reply) =>
    req.url.split('?', 1)[0]!.endsWith('/did.json')
      ? didDocument(req, reply)
      : reply.callNotFound(),
  )
}

/** The metrics text, as Prometheus scrapes it. */
async function exposition(ctx: AppContext, reply: FastifyReply) {
  return reply
    .header('content-type', ctx.metrics.registry.contentType)
    .send(await ctx.metrics.text())
}

/**
 * `/metrics` on the main port, only with GATEHOUSE_METRICS_TOKEN (as a bearer token); without it
 * the path is not served here (see listenMetrics for a port of its own).
 */
export function registerMetrics(app: FastifyInstance, ctx: AppContext): void {
  if (!ctx.metrics.tokenSet) return
  app.get('/metrics', async (req, reply) => {
    if (!ctx.metrics.admits(req.headers.authorization))
      throw new XrpcError(401, 'AuthenticationRequired', 'The metrics token is required')
    return exposition(ctx, reply)
  })
}

/**
 * GATEHOUSE_METRICS_PORT: `/metrics` without auth on a port of its own (on GATEHOUSE_METRICS_HOST,
 * loopback by default), for a scraper on a private network. Everything else there is 404.
 */
export async function listenMetrics(ctx: AppContext): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  app.get('/metrics', (_req, reply) => exposition(ctx, reply))
  await app.listen({ host: ctx.cfg.metrics.host, port: ctx.cfg.metrics.port })
  return app
}

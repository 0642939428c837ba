import type { FastifyInstance } from 'fastify'
import type { AppContext } from './context.js'
import { ServiceUnavailableError } from './errors.js'

/**
 * Liveness, readiness and the service's own DID document. Not XRPC methods (no NSID), so they sit
 * outside the router and outside rate limiting.
 */
export function registerHealth(app: FastifyInstance, ctx: AppContext): void {
  const noLimit = { rateLimit: false }

  /** Liveness: the process answers. Never touches the database. */
  app.get('/xrpc/_health', { config: noLimit }, async () => ({ version: ctx.cfg.service.version }))

  /** Readiness: the database answers too. 503 while it does not, so load balancers route around us. */
  app.get('/xrpc/_ready', { config: noLimit }, async () => {
    try {
      await ctx.db.ping()
    } catch (err) {
      throw new ServiceUnavailableError('Database is not reachable', { cause: err })
    }
    return { ready: true, version: ctx.cfg.service.version, db: ctx.db.kind }
  })

  app.get('/.well-known/did.json', { config: noLimit }, async (_req, reply) => {
    const doc = ctx.identity.didDocument()
    if (!doc)
      return reply.code(404).send({ error: 'NotFound', message: 'No did:web document here' })
    return reply.header('content-type', 'application/did+json').send(JSON.stringify(doc))
  })
}

import type { FastifyInstance } from 'fastify'
import type { AppContext } from '../context.js'
import { openApiDocument, referencePage } from './openapi.js'
import { API_PREFIX, registerRoutes } from './route.js'
import { ROUTES } from './routes.js'

/** The managers' REST API under /api/v1, its OpenAPI document and its reference page. */
export async function registerRest(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const doc = openApiDocument(ROUTES, ctx.cfg.service.version, ctx.cfg.service.publicUrl)
  const page = referencePage(doc)
  app.get(`${API_PREFIX}/openapi.json`, async () => doc)
  app.get(`${API_PREFIX}/docs`, async (_req, reply) =>
    reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'")
      .send(page),
  )
  await registerRoutes(app, ctx, ROUTES)
}

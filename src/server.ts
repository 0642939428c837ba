import { randomUUID } from 'node:crypto'
import { STATUS_CODES, type IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import rateLimit from '@fastify/rate-limit'
import type { AppContext } from './context.js'
import { InvalidRequestError, RateLimitError, toXrpcError, XrpcError } from './errors.js'
import { identityLimits, type IdentityLimit } from './net/identity-limits.js'
import { limitConnections } from './connections.js'
import { registerHealth, registerMetrics } from './health.js'
import { registerLogin } from './rest/login.js'
import { registerDashboard } from './rest/dashboard.js'
import { lazyChild, redactUrl, subsystem, type Logger } from './logger.js'
import { registerXrpcMethods } from './xrpc/index.js'
import { registerRest } from './rest/index.js'
import { XrpcRouter } from './xrpc/method.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The XRPC methods this server serves. */
    xrpc: XrpcRouter
    /** Per-identity rate limits (net/identity-limits.ts). */
    identityLimit: IdentityLimit
  }
}

const REQUEST_ID_RE = /^[A-Za-z0-9._-]{1,64}$/
/** Node's default time to receive request headers; a shorter request timeout lowers it. */
const HEADERS_TIMEOUT_MS = 60_000
const CONNECTIONS_CHECK_INTERVAL_MS = 1000
/** Retry-After of a 503 (and of a 429 that does not carry its own). */
const DEFAULT_RETRY_AFTER_SEC = 5

/** Whether `err` is the client hanging up while we read its request, not a failure of ours. */
function clientWentAway(err: unknown, raw: IncomingMessage): boolean {
  const code = (err as { code?: unknown } | undefined)?.code
  const reset = code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE'
  return reset && (raw.aborted || raw.destroyed)
}

/** Node's own refusals (timeout, big headers, bad HTTP) as XRPC errors, unless already sent. */
function clientErrorHandler(log: Logger) {
  return (err: Error & { code?: string }, socket: Socket) => {
    if (err.code === 'ECONNRESET' || socket.destroyed) return
    const [status, error, message] =
      err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'RequestTimeout', 'The request was not received in time']
        : err.code === 'HPE_HEADER_OVERFLOW'
          ? [431, 'RequestHeaderFieldsTooLarge', 'Request headers are too large']
          : [400, 'InvalidRequest', 'Malformed HTTP request']
    const address = socket.remoteAddress
    if (status === 408) log.info({ address }, 'request not received in time: connection closed')
    else log.debug({ address, code: err.code }, 'malformed HTTP request: connection closed')
    if (socket.writable && socket.bytesWritten === 0) {
      const body = JSON.stringify({ error, message })
      socket.write(
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      )
    }
    socket.destroy()
  }
}

/** The HTTP server around a context (XRPC, health, error and not-found handlers); not listening. */
export async function buildServer(ctx: AppContext): Promise<FastifyInstance> {
  const cfg = ctx.cfg.service
  const app = Fastify({
    loggerInstance: subsystem(ctx.logger, 'xrpc') as FastifyBaseLogger,
    bodyLimit: cfg.bodyLimitBytes,
    // Fastify's default is none: a body sent a byte at a time would hold a connection for ever.
    requestTimeout: cfg.requestTimeoutMs,
    clientErrorHandler: clientErrorHandler(subsystem(ctx.logger, 'http')),
    http: {
      headersTimeout: Math.min(HEADERS_TIMEOUT_MS, cfg.requestTimeoutMs),
      // Node looks for expired requests this often (its default, 30 s, would let one overstay).
      connectionsCheckingInterval: CONNECTIONS_CHECK_INTERVAL_MS,
    },
    trustProxy: cfg.trustProxy,
    // One access-log line per request comes from the onResponse hook below, with a redacted URL.
    logController: new LogController({ disableRequestLogging: true }),
    // Per-request loggers are made only when something logs through them (see lazyChild).
    childLoggerFactory: (logger, bindings, opts) =>
      lazyChild(logger as Logger, bindings, opts) as FastifyBaseLogger,
    // An incoming x-request-id is kept when it is a plain token, so a proxy's id follows the request.
    genReqId: (req) => {
      const given = req.headers['x-request-id']
      return typeof given === 'string' && REQUEST_ID_RE.test(given) ? given : randomUUID()
    },
    // Fastify's defaults, stated so that a change of default cannot weaken them.
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
  })

  // Procedures take JSON only: text/plain bodies would reach input schemas as strings.
  app.removeContentTypeParser('text/plain')
  // Bulk methods stream JSON lines; their handlers read the body themselves (with their own limits).
  app.addContentTypeParser('application/x-ndjson', (_req, payload, done) => done(null, payload))

  app.decorate('xrpc', new XrpcRouter(app, ctx))
  limitConnections(app.server, cfg, subsystem(ctx.logger, 'http'))

  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id)
  })
  // The XRPC error name of each refused or failed request, for the metrics.
  const errorNames = new WeakMap<object, string>()
  // The server's logger with reqId as a field: a per-request child's line, without the child.
  app.addHook('onResponse', async (req, reply) => {
    ctx.metrics.answered(
      req.routeOptions.url ?? 'unmatched',
      reply.statusCode,
      reply.elapsedTime / 1000,
      errorNames.get(req),
    )
    app.log.info(
      {
        reqId: req.id,
        method: req.method,
        url: redactUrl(req.url),
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 10) / 10,
      },
      'request',
    )
  })

  app.setErrorHandler(async (err, req, reply) => {
    const x = toXrpcError(err)
    errorNames.set(req, x.error)
    if (clientWentAway(err, req.raw)) {
      // No one will see an answer, and nothing of ours failed (not a 503 for an ECONNRESET).
      req.log.info({ method: req.method, url: redactUrl(req.url) }, 'request aborted by the client')
    } else if (x.status >= 500 && x.status !== 501) {
      req.log.error({ err: x === err ? err : (x.cause ?? err) }, 'request failed')
    } else {
      req.log.info({ status: x.status, error: x.error, message: x.message }, 'request refused')
    }
    if (x instanceof RateLimitError && x.retryAfterSec !== undefined)
      reply.header('retry-after', String(Math.max(1, x.retryAfterSec)))
    // The rate limiter's own Retry-After (in step with x-ratelimit-reset) must not be contradicted.
    if ((x.status === 503 || x.status === 429) && !reply.hasHeader('retry-after')) {
      reply.header('retry-after', String(DEFAULT_RETRY_AFTER_SEC))
    }
    return reply.code(x.status).send(x.toBody())
  })

  app.setNotFoundHandler(async (req) => {
    const path = req.url.split('?', 1)[0] ?? ''
    if (path.startsWith('/xrpc/')) {
      const method = app.xrpc.get(path.slice('/xrpc/'.length))
      if (method) {
        const expected = method.type === 'query' ? 'GET' : 'POST'
        throw new InvalidRequestError(`Incorrect HTTP method (${req.method}): expected ${expected}`)
      }
      throw new XrpcError(501, 'MethodNotImplemented', 'Method not implemented')
    }
    // A path outside /xrpc that Gatehouse does not serve.
    throw new XrpcError(404, 'NotFound', 'Not found')
  })

  // Per client address on every route (unless 0), and the per-identity limits handlers call.
  await app.register(rateLimit, {
    global: cfg.rateLimitPerMinute > 0,
    max: cfg.rateLimitPerMinute,
    timeWindow: 60_000,
    errorResponseBuilder: () => new XrpcError(429, 'RateLimitExceeded', 'Rate limit exceeded'),
  })
  app.decorate('identityLimit', identityLimits(app, ctx.cfg.rateLimits))

  registerHealth(app, ctx)
  registerMetrics(app, ctx)
  registerLogin(app, ctx)
  registerDashboard(app)
  registerXrpcMethods(app.xrpc)
  await registerRest(app, ctx)
  return app
}

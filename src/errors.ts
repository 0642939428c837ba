/** Every refusal Gatehouse sends, rendered by server.ts as `{ error, message }` with its status. */
export class XrpcError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.name = new.target.name
  }

  toBody(): { error: string; message: string } {
    return { error: this.error, message: this.message }
  }
}

/** 400: bad input, or a lexicon-declared refusal (`SpaceNotFound`, `UserNotAuthorized`, …). */
export class InvalidRequestError extends XrpcError {
  constructor(message: string, error = 'InvalidRequest', options?: { cause?: unknown }) {
    super(400, error, message, options)
  }
}

/** 401: a credential or signature that does not verify (`BadJwtSignature`, `JwtExpired`, …). */
export class AuthRequiredError extends XrpcError {
  constructor(message: string, error = 'AuthenticationRequired', options?: { cause?: unknown }) {
    super(401, error, message, options)
  }
}

/** 403: authenticated, but not permitted. */
export class ForbiddenError extends XrpcError {
  constructor(message: string, error = 'Forbidden', options?: { cause?: unknown }) {
    super(403, error, message, options)
  }
}

/** 429 `RateLimitExceeded`; `retryAfterSec` becomes the Retry-After header. */
export class RateLimitError extends XrpcError {
  constructor(
    message: string,
    readonly retryAfterSec?: number,
  ) {
    super(429, 'RateLimitExceeded', message)
  }
}

/** 500: never carries internal detail in its message; the cause is logged instead. */
export class InternalServerError extends XrpcError {
  constructor(message = 'Internal server error', options?: { cause?: unknown }) {
    super(500, 'InternalServerError', message, options)
  }
}

/** 503: transient; repo hosts retry 5xx for 24 h and drop 4xx, so never use a 4xx for this. */
export class ServiceUnavailableError extends XrpcError {
  constructor(message = 'Service temporarily unavailable', options?: { cause?: unknown }) {
    super(503, 'ServiceUnavailable', message, options)
  }
}

type FastifyLikeError = Error & { code?: string; statusCode?: number; validation?: unknown }

/** Error codes of drivers and Prisma that mean "try again later", not "your request is bad". */
const TRANSIENT_CODES = new Set([
  'P1001', // can't reach database server
  'P1002', // database server timed out
  'P1008', // operation timed out
  'P1017', // server closed the connection
  'P2024', // timed out fetching a connection from the pool
  'P2034', // transaction failed because of a write conflict or deadlock
  'SQLITE_BUSY',
  'SQLITE_LOCKED',
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, shutting down, in recovery)
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '25006', // read_only_sql_transaction (a read-only server or standby)
  'SQLITE_FULL', // the disk (or the database's size limit) is full
])

/**
 * Whole families that mean the storage cannot take a write now, not that the request is bad:
 * SQLite's I/O errors and read-only database (every extended code: SQLITE_IOERR_WRITE,
 * SQLITE_READONLY_DBMOVED, …) and PostgreSQL's class 53, insufficient resources (53100 disk_full,
 * 53200 out_of_memory, 53300 too_many_connections, …).
 */
const TRANSIENT_FAMILIES = /^(SQLITE_IOERR|SQLITE_READONLY)(_|$)|^53[0-9A-Z]{3}$/

function isTransient(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && (TRANSIENT_CODES.has(code) || TRANSIENT_FAMILIES.test(code)))
      return true
    const msg = (e as { message?: unknown }).message
    // node-postgres names a connection lost under a query only in its message.
    const gone =
      /database is locked|Can't reach database server|Connection terminated|connection error and is not queryable/
    if (typeof msg === 'string' && gone.test(msg)) {
      return true
    }
    // Prisma carries the driver's error in `cause`, or for a raw query (P2010) in its meta.
    const wrapped = e as { cause?: unknown; meta?: { driverAdapterError?: unknown } }
    e = wrapped.cause ?? wrapped.meta?.driverAdapterError
  }
  return false
}

/** Fastify's own errors keep their meaning; anything unknown is a 500 that reveals nothing. */
export function toXrpcError(err: unknown): XrpcError {
  if (err instanceof XrpcError) return err
  const e = err as FastifyLikeError
  switch (e?.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new XrpcError(413, 'PayloadTooLarge', 'Request body is too large')
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new XrpcError(
        415,
        'UnsupportedMediaType',
        'Unsupported content type: XRPC procedures take application/json',
      )
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new InvalidRequestError('Request body is empty but content-type is application/json')
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new InvalidRequestError('Request body is not valid JSON')
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new InvalidRequestError('Content-Length does not match the body')
  }
  if (e instanceof SyntaxError && e.statusCode === 400) {
    return new InvalidRequestError('Request body is not valid JSON')
  }
  if (e?.statusCode === 429) return new XrpcError(429, 'RateLimitExceeded', 'Rate limit exceeded')
  if (isTransient(err)) return new ServiceUnavailableError(undefined, { cause: err })
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    // Other client errors raised by Fastify itself (malformed URL, bad header, …).
    return new XrpcError(e.statusCode, 'InvalidRequest', e.message)
  }
  return new InternalServerError(undefined, { cause: err })
}

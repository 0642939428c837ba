import { pino, stdSerializers, type DestinationStream, type Logger as PinoLogger } from 'pino'

export type Logger = PinoLogger
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'

/**
 * Header and field paths that can carry secrets. Request headers are not logged at all (see
 * `serializers.req`); this list is the second line of defence for anything a caller logs by hand.
 */
export const REDACT_PATHS = [
  'authorization',
  'signature',
  'dpop',
  'cookie',
  'password',
  'secret',
  'token',
  'credential',
  'privateKey',
  'privateKeyHex',
  'kek',
  'jwk.d',
  '*.authorization',
  '*.signature',
  '*.dpop',
  '*.cookie',
  '*.password',
  '*.secret',
  '*.token',
  '*.credential',
  '*.privateKey',
  '*.privateKeyHex',
  '*.kek',
  '*.d',
  'req.headers.authorization',
  'req.headers.signature',
  'req.headers.dpop',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
]

const SENSITIVE_QUERY = /token|code|secret|key|password|credential|state/i

/** A URL for the log: path kept, values of query parameters that could carry secrets replaced. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?')
  if (q < 0) return url
  const params = new URLSearchParams(url.slice(q + 1))
  for (const key of [...params.keys()]) {
    if (SENSITIVE_QUERY.test(key)) params.set(key, '[redacted]')
  }
  return `${url.slice(0, q)}?${params.toString()}`
}

interface SerializableRequest {
  id?: string
  method?: string
  url?: string
  ip?: string
}

export function createLogger(opts: { level: LogLevel; destination?: DestinationStream }): Logger {
  return pino(
    {
      level: opts.level,
      base: { service: 'gatehouse' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: {
        err: stdSerializers.err,
        req: (req: SerializableRequest) => ({
          id: req.id,
          method: req.method,
          url: req.url ? redactUrl(req.url) : undefined,
          remoteAddress: req.ip,
        }),
        res: (res: { statusCode?: number }) => ({ statusCode: res.statusCode }),
      },
    },
    opts.destination,
  )
}

/** Named children for the subsystems, so operators can filter (`gatehouse:xrpc`, `gatehouse:db`, …). */
export function subsystem(logger: Logger, name: string): Logger {
  return logger.child({ subsystem: `gatehouse:${name}` })
}

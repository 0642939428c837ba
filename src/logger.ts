import {
  pino,
  stdSerializers,
  type Bindings,
  type ChildLoggerOptions,
  type DestinationStream,
  type Logger as PinoLogger,
} from 'pino'

export type Logger = PinoLogger
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'

/** Paths that can carry secrets: a second defence (request headers are never logged at all). */
const SECRET_FIELDS = [
  ...['authorization', 'signature', 'dpop', 'cookie', 'password', 'secret', 'token'],
  ...['credential', 'privateKey', 'privateKeyHex', 'kek'],
]
export const REDACT_PATHS = [
  ...SECRET_FIELDS,
  ...SECRET_FIELDS.map((field) => `*.${field}`),
  'jwk.d',
  '*.d',
  ...['authorization', 'signature', 'dpop', 'cookie'].map((h) => `req.headers.${h}`),
  'res.headers["set-cookie"]',
]

const SENSITIVE_QUERY = /token|code|secret|key|password|credential|state/i

/** An invite's link carries its code in the path: `/join/{code}[/…]`. */
const INVITE_PATH = /^\/join\/[^/?]+/

/**
 * A URL for the log: path kept (but an invite's code), values of query parameters that could carry
 * secrets replaced.
 */
export function redactUrl(url: string): string {
  url = url.replace(INVITE_PATH, '/join/[redacted]')
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

/** A request logger that becomes a pino child (6 KB, microseconds) only when something logs. */
export function lazyChild(parent: Logger, bindings: Bindings, opts: ChildLoggerOptions): Logger {
  if (opts.level !== undefined && opts.level !== parent.level) return parent.child(bindings, opts)
  return new LazyChild(parent, bindings, opts) as unknown as Logger
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const
type LevelName = (typeof LEVELS)[number]

/** Methods on the prototype (the levels are added below): an instance is four fields. */
class LazyChild {
  private real: Logger | undefined

  constructor(
    private readonly parent: Logger,
    private readonly bindings: Bindings,
    private readonly opts: ChildLoggerOptions,
  ) {}

  private made(): Logger {
    return (this.real ??= this.parent.child(this.bindings, this.opts))
  }

  write(level: LevelName, args: unknown[]): void {
    if (this.real || this.parent.isLevelEnabled(level))
      (this.made()[level] as (...a: unknown[]) => void)(...args)
  }

  silent(): void {}
  child(bindings: Bindings, opts?: ChildLoggerOptions): Logger {
    return this.made().child(bindings, opts)
  }
  isLevelEnabled(level: string): boolean {
    return (this.real ?? this.parent).isLevelEnabled(level)
  }
  get level(): string {
    return (this.real ?? this.parent).level
  }
  set level(level: string) {
    this.made().level = level
  }
}

for (const level of LEVELS) {
  Object.defineProperty(LazyChild.prototype, level, {
    value(this: LazyChild, ...args: unknown[]) {
      this.write(level, args)
    },
  })
}

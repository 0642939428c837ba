import { lookup as dnsLookup, type LookupAddress } from 'node:dns'
import { isIP } from 'node:net'
import { Agent, request, type Dispatcher } from 'undici'
import { isNonPublicAddress } from './addresses.js'

/** Every outbound request: addresses checked at connect time, after DNS; no redirects; bounded. */

export type FetchErrorKind =
  'bad_url' | 'blocked' | 'timeout' | 'too_large' | 'network' | 'http' | 'bad_json'

export class FetchError extends Error {
  override name = 'FetchError'
  constructor(
    readonly kind: FetchErrorKind,
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}

export { isNonPublicAddress }

export type FetchMethod = 'GET' | 'POST'

/** A service the operator configured: the requests it serves reach it at any address, no others. */
export interface TrustedService {
  origin: string
  /** Whether `method` on `path` (path and query, as sent) is a request the service serves. */
  allows(method: FetchMethod, path: string): boolean
}

export interface SafeFetchOptions {
  /** Allow non-public targets (development and tests only). */
  allowPrivate: boolean
  /** Give such a fetcher to that service's client alone: the trust goes with the fetcher. */
  trusted?: TrustedService
  timeoutMs: number
  maxBytes: number
  userAgent?: string
}

export interface SafeResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
}

export interface RequestOptions {
  method?: FetchMethod
  headers?: Record<string, string>
  body?: string
  timeoutMs?: number
  maxBytes?: number
}

/** undici's error codes for its own deadlines (connect, answer, body). */
const UNDICI_TIMEOUTS = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
])

const CHECKED_MAX = 10_000

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void

export type LookupAll = (
  hostname: string,
  cb: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
) => void

/** Host-name lookups at once, and waiting, for all outbound requests (see limitLookups). */
const LOOKUP_THREADS = 2
const LOOKUP_QUEUE = 512

/** dns.lookup holds a shared libuv thread and anyone picks the names: bound running and queued. */
export function limitLookups(lookup: LookupAll, max: number, maxQueued: number): LookupAll {
  let running = 0
  const waiting: (() => void)[] = []
  const next = () => {
    running--
    waiting.shift()?.()
  }
  return (hostname, cb) => {
    const start = () => {
      running++
      lookup(hostname, (err, addresses) => {
        next()
        cb(err, addresses)
      })
    }
    if (running < max) return start()
    if (waiting.length >= maxQueued) {
      const err = new Error(
        `too many host-name lookups waiting (${hostname})`,
      ) as NodeJS.ErrnoException
      err.code = 'EAI_AGAIN'
      return queueMicrotask(() => cb(err, []))
    }
    waiting.push(start)
  }
}

const limitedLookup = limitLookups(
  (hostname, cb) => dnsLookup(hostname, { all: true }, cb),
  LOOKUP_THREADS,
  LOOKUP_QUEUE,
)

/** limitedLookup with the callback shape net.connect and undici call a `lookup` option with. */
function connectLookup(
  filter?: (hostname: string, addresses: LookupAddress[]) => Error | undefined,
) {
  return (hostname: string, options: { all?: boolean }, cb: LookupCallback) =>
    limitedLookup(hostname, (err, addresses) => {
      if (err) return cb(err, [])
      const refused = filter?.(hostname, addresses)
      if (refused) return cb(refused, [])
      if (options.all) return cb(null, addresses)
      return cb(null, addresses[0]!.address, addresses[0]!.family)
    })
}

export class SafeFetcher {
  private readonly guarded: Agent
  /** For trusted requests only: connects wherever the service's name resolves. */
  private readonly open: Agent | undefined
  private readonly trusted: TrustedService | undefined
  /** Parsed URLs, and whether they name a non-public address literally (and are refused for that). */
  private readonly checked = new Map<string, { url: URL; refused: boolean }>()

  constructor(private readonly opts: SafeFetchOptions) {
    this.trusted = opts.trusted && {
      origin: new URL(opts.trusted.origin).origin,
      allows: opts.trusted.allows,
    }
    const allowPrivate = opts.allowPrivate
    const guardedLookup = connectLookup((hostname, addresses) => {
      if (allowPrivate || !addresses.some((a) => isNonPublicAddress(a.address))) return undefined
      const e = new Error(`${hostname} resolves to a non-public address`) as NodeJS.ErrnoException
      e.code = 'EGATEHOUSEBLOCKED'
      return e
    })
    const common = { keepAliveTimeout: 10_000, connections: 64 }
    const connect = { timeout: opts.timeoutMs }
    this.guarded = new Agent({ ...common, connect: { ...connect, lookup: guardedLookup as never } })
    this.open = this.trusted
      ? new Agent({ ...common, connect: { ...connect, lookup: connectLookup() as never } })
      : undefined
  }

  /** Throws FetchError('bad_url' | 'blocked'); verdicts depend on the URL alone, so are kept. */
  check(url: string, method: FetchMethod = 'GET'): URL {
    let hit = this.checked.get(url)
    if (!hit) {
      hit = this.judge(url)
      if (this.checked.size >= CHECKED_MAX) this.checked.delete(this.checked.keys().next().value!)
      this.checked.set(url, hit)
    }
    if (hit.refused && !this.isTrusted(hit.url, method)) {
      throw new FetchError('blocked', `${hit.url.hostname} is not a public address`)
    }
    return hit.url
  }

  /** A request the trusted service serves: only those skip the address check. */
  private isTrusted(u: URL, method: FetchMethod): boolean {
    const t = this.trusted
    return t !== undefined && u.origin === t.origin && t.allows(method, u.pathname + u.search)
  }

  private judge(url: string): { url: URL; refused: boolean } {
    let u: URL
    try {
      u = new URL(url)
    } catch {
      throw new FetchError('bad_url', `not a URL: ${url}`)
    }
    if (u.protocol !== 'https:' && u.protocol !== 'http:') {
      throw new FetchError('bad_url', `only http(s) URLs can be fetched: ${u.protocol}`)
    }
    if (u.username || u.password)
      throw new FetchError('bad_url', 'URLs with credentials are refused')
    // A literal address never reaches the connect-time lookup, so it is judged here.
    const host = u.hostname.replace(/^\[|\]$/g, '')
    const refused = !this.opts.allowPrivate && isIP(host) !== 0 && isNonPublicAddress(host)
    return { url: u, refused }
  }

  private dispatcher(u: URL, method: FetchMethod): Dispatcher {
    return this.open && this.isTrusted(u, method) ? this.open : this.guarded
  }

  async request(url: string, opts: RequestOptions = {}): Promise<SafeResponse> {
    const method = opts.method ?? 'GET'
    const u = this.check(url, method)
    const maxBytes = opts.maxBytes ?? this.opts.maxBytes
    // One deadline for answer and body; far cheaper per request than AbortSignal.timeout.
    const controller = new AbortController()
    const signal = controller.signal
    const timer = setTimeout(() => controller.abort(), opts.timeoutMs ?? this.opts.timeoutMs)
    try {
      let res: Dispatcher.ResponseData
      try {
        res = await request(u, {
          method,
          headers: { 'user-agent': this.opts.userAgent ?? 'gatehouse', ...opts.headers },
          body: opts.body,
          dispatcher: this.dispatcher(u, method),
          signal,
          maxRedirections: 0,
        })
      } catch (err) {
        throw this.wrap(err, u, signal)
      }
      const declared = Number(res.headers['content-length'])
      if (Number.isFinite(declared) && declared > maxBytes) {
        res.body.destroy()
        throw new FetchError(
          'too_large',
          `${u.origin} answered with ${declared} bytes (limit ${maxBytes})`,
        )
      }
      const chunks: Buffer[] = []
      let size = 0
      try {
        for await (const chunk of res.body) {
          size += (chunk as Buffer).length
          if (size > maxBytes) {
            res.body.destroy()
            throw new FetchError(
              'too_large',
              `${u.origin} answered with more than ${maxBytes} bytes`,
            )
          }
          chunks.push(chunk as Buffer)
        }
      } catch (err) {
        if (err instanceof FetchError) throw err
        throw this.wrap(err, u, signal)
      }
      return { status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }
    } finally {
      clearTimeout(timer)
    }
  }

  /** The relay's POST: status only, body drained up to `maxBytes`, no AbortController. */
  async postForStatus(
    url: string,
    opts: { headers: Record<string, string>; body: string; timeoutMs?: number; maxBytes?: number },
  ): Promise<number> {
    const u = this.check(url, 'POST')
    const timeoutMs = opts.timeoutMs ?? this.opts.timeoutMs
    const deadline = Date.now() + timeoutMs
    try {
      // The agent's own request(): no URL parse or redirect layer per call; it never redirects.
      const res = await this.dispatcher(u, 'POST').request({
        origin: u.origin,
        path: u.pathname + u.search,
        method: 'POST',
        headers: { 'user-agent': this.opts.userAgent ?? 'gatehouse', ...opts.headers },
        body: opts.body,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      })
      // The body gets what is left of the deadline (a trickle would renew per chunk); once the
      // status is in, giving up on the body still counts the answer.
      const cutOff = setTimeout(() => res.body.destroy(), Math.max(0, deadline - Date.now()))
      try {
        await res.body.dump({ limit: opts.maxBytes ?? this.opts.maxBytes })
      } finally {
        clearTimeout(cutOff)
      }
      return res.statusCode
    } catch (err) {
      throw this.wrap(err, u)
    }
  }

  async getJson(url: string, opts: Omit<RequestOptions, 'method' | 'body'> = {}): Promise<unknown> {
    return (await this.getJsonSized(url, opts)).json
  }

  async getJsonSized(
    url: string,
    opts: Omit<RequestOptions, 'method' | 'body'> = {},
  ): Promise<{ json: unknown; bytes: number }> {
    const res = await this.request(url, {
      ...opts,
      headers: { accept: 'application/json', ...opts.headers },
    })
    if (res.status !== 200)
      throw new FetchError('http', `${new URL(url).origin} answered ${res.status}`, res.status)
    try {
      return { json: JSON.parse(res.body.toString('utf8')), bytes: res.body.length }
    } catch {
      throw new FetchError('bad_json', `${new URL(url).origin} did not answer with JSON`)
    }
  }

  private wrap(err: unknown, u: URL, signal?: AbortSignal): FetchError {
    const code =
      (err as { code?: string; cause?: { code?: string } })?.code ??
      (err as { cause?: { code?: string } })?.cause?.code
    if (signal?.aborted || (code !== undefined && UNDICI_TIMEOUTS.has(code)))
      return new FetchError('timeout', `${u.origin} did not answer in time`, undefined, {
        cause: err,
      })
    if (
      code === 'EGATEHOUSEBLOCKED' ||
      /non-public address/.test(String((err as Error)?.message))
    ) {
      return new FetchError('blocked', `${u.hostname} is not a public address`, undefined, {
        cause: err,
      })
    }
    return new FetchError('network', `could not reach ${u.origin}`, undefined, { cause: err })
  }

  async close(): Promise<void> {
    await Promise.all([this.guarded.close(), this.open?.close()])
  }
}

import { z } from 'zod'

/** zod atproto string formats and XRPC params (a repeated key is accepted by arrays only). */

const DID_RE = /^did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]$/
const NSID_RE =
  /^[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)+\.[a-zA-Z]([a-zA-Z0-9]{0,62})?$/
const RKEY_RE = /^[a-zA-Z0-9._:~-]{1,512}$/
const TID_RE = /^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$/
const DATETIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/

/** A NUL, or a UTF-16 surrogate without its pair (not representable in UTF-8). */
const UNSTORABLE_RE =
  /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/**
 * Path of the first string (keys too) PostgreSQL would refuse (NUL, lone surrogate), if any. Below
 * the top level (a router's params object may be of its own class) it walks parsed JSON only: plain
 * objects and arrays, at most 64 deep; anything else there is refused as such.
 */
export function findUnstorableText(value: unknown, path = '', depth = 0): string | undefined {
  if (typeof value === 'string') return UNSTORABLE_RE.test(value) ? path || '(value)' : undefined
  if (value === null || typeof value !== 'object') return undefined
  const proto = Object.getPrototypeOf(value) as unknown
  const plain = Array.isArray(value) || proto === Object.prototype || proto === null
  if ((depth > 0 && !plain) || depth >= 64) return path || '(value)'
  for (const [k, v] of Array.isArray(value) ? value.entries() : Object.entries(value)) {
    const at = path ? `${path}.${k}` : String(k)
    if (typeof k === 'string' && UNSTORABLE_RE.test(k)) return at
    const found = findUnstorableText(v, at, depth + 1)
    if (found) return found
  }
  return undefined
}

export const isDid = (s: string) => s.length <= 2048 && DID_RE.test(s)
export const isNsid = (s: string) => s.length <= 317 && NSID_RE.test(s)
export const isRecordKey = (s: string) => RKEY_RE.test(s) && s !== '.' && s !== '..'
export const isTid = (s: string) => TID_RE.test(s)

export const did = z.string().refine(isDid, 'must be a DID')
export const nsid = z.string().refine(isNsid, 'must be an NSID')
export const recordKey = z.string().refine(isRecordKey, 'must be a record key')
export const tid = z.string().refine(isTid, 'must be a TID')
export const datetime = z
  .string()
  .refine(
    (s) => DATETIME_RE.test(s) && !Number.isNaN(Date.parse(s)),
    'must be an RFC 3339 datetime',
  )

export interface SpaceRef {
  authority: string
  spaceType: string
  skey: string
}

/** `at://{authorityDid}/space/{spaceType}/{skey}`, strictly: DID authority, no query, no trailing slash. */
export function parseSpaceRef(s: string): SpaceRef | undefined {
  if (s.length > 8192 || !s.startsWith('at://')) return undefined
  const parts = s.slice('at://'.length).split('/')
  if (parts.length !== 4 || parts[1] !== 'space') return undefined
  const [authority, , spaceType, skey] = parts as [string, string, string, string]
  if (!isDid(authority) || !isNsid(spaceType) || !isRecordKey(skey)) return undefined
  return { authority, spaceType, skey }
}

/** The authority of a space URI already checked by `spaceRef`, without parsing it again. */
export function spaceAuthority(uri: string): string {
  const end = uri.indexOf('/', 5)
  return uri.slice(5, end < 0 ? undefined : end)
}

export function formatSpaceRef(ref: SpaceRef): string {
  return `at://${ref.authority}/space/${ref.spaceType}/${ref.skey}`
}

export const spaceRef = z
  .string()
  .refine(
    (s) => parseSpaceRef(s) !== undefined,
    'must be a space reference (at://<did>/space/<nsid>/<skey>)',
  )

/** Lexicon `bytes` in JSON: `{ "$bytes": base64 without padding }`. */
export const bytes = z
  .object({ $bytes: z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64') })
  .strict()

/** Bytes as lexicon JSON. */
export function toBytesJson(bytes: Uint8Array): { $bytes: string } {
  return { $bytes: Buffer.from(bytes).toString('base64').replace(/=+$/, '') }
}

/** A query parameter given at most once. */
function single<T extends z.ZodType>(schema: T) {
  return z.preprocess((v, ctx) => {
    if (!Array.isArray(v)) return v
    if (v.length === 1) return v[0]
    ctx.addIssue({ code: 'custom', message: 'must be given once', input: v })
    return z.NEVER
  }, schema)
}

const integerString = (min: number, max: number) =>
  z
    .string()
    .regex(/^-?\d+$/, 'must be an integer')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max))

export const param = {
  string: <T extends z.ZodType>(schema: T) => single(schema),
  integer: (opts: { min: number; max: number; default?: number }) => {
    const s = single(integerString(opts.min, opts.max))
    return opts.default === undefined ? s : s.default(opts.default)
  },
  boolean: () => single(z.enum(['true', 'false']).transform((v) => v === 'true')),
  /** An array parameter: `?x=a&x=b`; one occurrence still makes an array. */
  array: <T extends z.ZodType>(item: T) =>
    z.preprocess((v) => (v === undefined || Array.isArray(v) ? v : [v]), z.array(item)),
}

import { parseDidKey, type ParsedKey } from './did-key.js'
import { utf8 } from './encoding.js'
import { SignatureError } from './errors.js'
import { verifySignature, verifySignatureAsync, type Keypair } from './keypair.js'
import {
  isInnerList,
  parseDictionary,
  serializeInnerList,
  StructuredFieldError,
  type InnerList,
  type Params,
} from './structured-fields.js'

/**
 * The `atproto-space` profile of RFC 9421 (contract §3.4): the exchange form is signed by its `keyid`
 * (a P-256 did:key the credential is then bound to), the presentation form by the credential's
 * `cnf.kid`. No method, URL, body or time is covered: a captured request replays to the same audience
 * until its credential expires (§5.12), unless the signer adds `expires`.
 */

export const SIGNATURE_LABEL = 'atproto-space'
export const SIGNATURE_ALG = 'ecdsa-p256-sha256'
export const AUDIENCE_HEADER = 'atproto-space-audience'

const COMPONENTS = {
  exchange: ['authorization'],
  presentation: ['authorization', AUDIENCE_HEADER],
} as const
export type SignatureForm = keyof typeof COMPONENTS

const ALLOWED_PARAMS = new Set(['alg', 'keyid', 'created', 'expires', 'nonce', 'tag'])

/** All values a header arrived with (a repeated header has several). */
export type HeaderLookup = (name: string) => string[]

export interface VerifiedRequestSignature {
  keyDid: string
  key: ParsedKey
  /** Presentation form only. */
  audience: string | undefined
}

const bad = (message: string) => new SignatureError('BadSpaceSignature', message)

function one(headers: HeaderLookup, name: string): string {
  const values = headers(name)
  if (values.length === 0) throw bad(`request signature covers "${name}", which is missing`)
  if (values.length > 1) throw bad(`request has more than one "${name}" header`)
  return values[0]!.trim()
}

function labelled<T>(
  headers: HeaderLookup,
  name: string,
  pick: (m: ReturnType<typeof parseDictionary>) => T,
): T {
  const values = headers(name)
  if (values.length === 0) throw bad(`request signature is missing (no ${name} header)`)
  try {
    return pick(parseDictionary(values.join(', ')))
  } catch (err) {
    if (err instanceof StructuredFieldError)
      throw bad(`${name} is not a valid structured field: ${err.message}`)
    throw err
  }
}

function param(params: Params, name: string): unknown {
  return params.find(([k]) => k === name)?.[1]
}

function signatureBase(
  components: readonly string[],
  values: readonly string[],
  list: InnerList,
): string {
  const lines = components.map((c, i) => `"${c}": ${values[i]}`)
  lines.push(`"@signature-params": ${serializeInnerList(list)}`)
  return lines.join('\n')
}

type VerifyOptions = { nowSec: number; boundKeyDid?: string }

export function verifyRequestSignature(
  headers: HeaderLookup,
  form: SignatureForm,
  opts: VerifyOptions,
): VerifiedRequestSignature {
  const { verified, base, signature } = readRequestSignature(headers, form, opts)
  if (!verifySignature('p256', verified.key.publicKey, base, signature, { allowHighS: true }))
    throw bad('request signature does not verify')
  return verified
}

/** The P-256 check on libuv's thread pool; every other check throws synchronously. */
export function verifyRequestSignatureAsync(
  headers: HeaderLookup,
  form: SignatureForm,
  opts: VerifyOptions,
): Promise<VerifiedRequestSignature> {
  const { verified, base, signature } = readRequestSignature(headers, form, opts)
  const { publicKey } = verified.key
  return verifySignatureAsync('p256', publicKey, base, signature, { allowHighS: true }).then(
    (ok) => {
      if (!ok) throw bad('request signature does not verify')
      return verified
    },
  )
}

/** Everything but the signature check itself: nothing here is evidence yet. */
function readRequestSignature(
  headers: HeaderLookup,
  form: SignatureForm,
  opts: VerifyOptions,
): { verified: VerifiedRequestSignature; base: Uint8Array; signature: Uint8Array } {
  const list = labelled(headers, 'signature-input', (d) => {
    const m = d.get(SIGNATURE_LABEL)
    if (!m || !isInnerList(m)) throw bad(`signature-input has no "${SIGNATURE_LABEL}" inner list`)
    return m
  })
  const signature = labelled(headers, 'signature', (d) => {
    const m = d.get(SIGNATURE_LABEL)
    if (!m || isInnerList(m) || !(m.value instanceof Uint8Array)) {
      throw bad(`signature has no "${SIGNATURE_LABEL}" byte sequence`)
    }
    return m.value
  })

  const expected = COMPONENTS[form]
  const covered = list.items.map((it) =>
    typeof it.value === 'string' && it.params.length === 0 ? it.value : null,
  )
  if (covered.length !== expected.length || covered.some((c, i) => c !== expected[i])) {
    throw bad(`request signature must cover exactly (${expected.map((c) => `"${c}"`).join(' ')})`)
  }
  for (const [k] of list.params) {
    if (!ALLOWED_PARAMS.has(k)) throw bad(`unsupported signature parameter "${k}"`)
  }
  const alg = param(list.params, 'alg')
  if (alg !== undefined && alg !== SIGNATURE_ALG)
    throw bad(`signature "alg" must be ${SIGNATURE_ALG}`)
  const expires = param(list.params, 'expires')
  if (expires !== undefined && (typeof expires !== 'number' || opts.nowSec > expires)) {
    throw bad('request signature has expired')
  }
  const keyid = param(list.params, 'keyid')
  if (keyid !== undefined && typeof keyid !== 'string')
    throw bad('signature "keyid" must be a string')

  let keyDid: string
  if (form === 'exchange') {
    if (keyid === undefined) throw bad('signature "keyid" (a P-256 did:key) is required')
    keyDid = keyid
  } else {
    if (!opts.boundKeyDid) throw bad('no key is bound to this credential')
    if (keyid !== undefined && keyid !== opts.boundKeyDid) {
      throw bad('signature "keyid" is not the key the credential is bound to')
    }
    keyDid = opts.boundKeyDid
  }
  let key: ParsedKey
  try {
    key = parseDidKey(keyDid)
  } catch {
    throw bad('signature key is not a did:key')
  }
  if (key.curve !== 'p256') throw bad('signature key must be a P-256 did:key')

  const values = expected.map((name) => one(headers, name))
  if (signature.length !== 64) throw bad('signature must be 64 bytes (r‖s)')
  const base = utf8.encode(signatureBase(expected, values, list))
  const verified = { keyDid, key, audience: form === 'presentation' ? values[1] : undefined }
  return { verified, base, signature }
}

/** Signs as a client does: the headers to send beside `authorization` (and the audience). */
export function signRequest(opts: {
  form: SignatureForm
  authorization: string
  audience?: string
  key: Keypair
  includeKeyId?: boolean
  extraParams?: Params
}): { 'signature-input': string; signature: string } {
  if (opts.key.curve !== 'p256') throw new Error('atproto-space signatures use P-256 keys')
  const components = COMPONENTS[opts.form]
  const values =
    opts.form === 'exchange' ? [opts.authorization] : [opts.authorization, opts.audience ?? '']
  const params: Params = []
  if (opts.form === 'exchange' || opts.includeKeyId) params.push(['keyid', opts.key.did()])
  params.push(...(opts.extraParams ?? []))
  const list: InnerList = { items: components.map((c) => ({ value: c, params: [] })), params }
  const sig = opts.key.sign(utf8.encode(signatureBase(components, values, list)))
  return {
    'signature-input': `${SIGNATURE_LABEL}=${serializeInnerList(list)}`,
    signature: `${SIGNATURE_LABEL}=:${Buffer.from(sig).toString('base64')}:`,
  }
}

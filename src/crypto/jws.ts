import { TokenError } from './errors.js'
import { fromBase64Url, toBase64Url, utf8 } from './encoding.js'
import { JWT_ALG, verifySignatureAsync, type Keypair } from './keypair.js'
import type { Curve } from './key-object.js'

/** Compact JWS for ES256K and ES256 only, so `none` and HMAC can never select a verification path. */

/** Refused before any decoding. */
export const MAX_TOKEN_LENGTH = 8 * 1024

export type JwtAlg = 'ES256K' | 'ES256'

export interface ParsedJws {
  header: Record<string, unknown> & { alg: JwtAlg }
  payload: Record<string, unknown>
  signingInput: Uint8Array
  signature: Uint8Array
}

const ALG_CURVE: Record<JwtAlg, Curve> = { ES256K: 'secp256k1', ES256: 'p256' }

function decodeJson(part: string, what: string): Record<string, unknown> {
  const bytes = fromBase64Url(part)
  if (!bytes) throw new TokenError('BadJwt', `malformed token: ${what} is not base64url`)
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'))
  } catch {
    throw new TokenError('BadJwt', `malformed token: ${what} is not JSON`)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TokenError('BadJwt', `malformed token: ${what} is not a JSON object`)
  }
  return value as Record<string, unknown>
}

/** Checks no claim and no signature. */
export function parseJws(token: string): ParsedJws {
  if (typeof token !== 'string' || token.length === 0) {
    throw new TokenError('BadJwt', 'malformed token: empty')
  }
  if (token.length > MAX_TOKEN_LENGTH) throw new TokenError('BadJwt', 'malformed token: too large')
  const parts = token.split('.')
  if (parts.length !== 3) throw new TokenError('BadJwt', 'malformed token: expected 3 parts')
  const [h, p, s] = parts as [string, string, string]
  const header = decodeJson(h, 'header')
  const payload = decodeJson(p, 'payload')
  const signature = fromBase64Url(s)
  if (!signature) throw new TokenError('BadJwt', 'malformed token: signature is not base64url')
  if (header.alg !== 'ES256K' && header.alg !== 'ES256') {
    throw new TokenError(
      'BadJwt',
      `unsupported token algorithm: ${JSON.stringify(header.alg ?? null)}`,
    )
  }
  return {
    header: header as ParsedJws['header'],
    payload,
    signingInput: utf8.encode(`${h}.${p}`),
    signature,
  }
}

/** The key's curve must be the one `alg` names. */
export async function verifyJws(
  jws: ParsedJws,
  key: { curve: Curve; publicKey: Uint8Array },
  opts: { allowHighS: boolean },
): Promise<boolean> {
  if (ALG_CURVE[jws.header.alg] !== key.curve) return false
  return verifySignatureAsync(key.curve, key.publicKey, jws.signingInput, jws.signature, opts)
}

/** `alg` comes from the key. */
export function signJws(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  key: Keypair,
): string {
  const { alg: _ignored, ...rest } = header
  const h = toBase64Url(utf8.encode(JSON.stringify({ alg: JWT_ALG[key.curve], ...rest })))
  const input = `${h}.${toBase64Url(utf8.encode(JSON.stringify(payload)))}`
  return `${input}.${toBase64Url(key.sign(utf8.encode(input)))}`
}

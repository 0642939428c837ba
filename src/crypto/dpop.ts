import {
  calculateJwkThumbprint,
  EmbeddedJWK,
  errors as joseErrors,
  jwtVerify,
  type JWK,
} from 'jose'
import { SignatureError } from './errors.js'
import { toBase64Url } from './encoding.js'
import { sha256 } from './keypair.js'
import { isJti } from './space-token.js'

/**
 * Wire generation A's credential binding: DPoP proofs (RFC 9449), kept as a compatibility profile
 * (contract §3.6). A proof is a JWT `{ typ: "dpop+jwt", alg: "ES256", jwk }` over
 * `{ jti, htm, htu, iat, ath? }`, valid for 60 s with 5 s of skew. `ath` (RFC 9449 §4.2) is required
 * when a credential is presented and forbidden when one is obtained; the proof key's RFC 7638
 * thumbprint must equal the credential's `cnf.jkt`. Replay of the proof's `jti` is the caller's check.
 */

export const DPOP_MAX_AGE_SEC = 60
export const DPOP_SKEW_SEC = 5

export interface DpopCheck {
  htm: string
  /** The request URL as the client addressed it (public origin + path; query ignored). */
  htu: string
  nowSec: number
  /** The credential being presented; absent when a credential is being obtained. */
  accessToken?: string
  /** The credential's `cnf.jkt`, when one is presented. */
  expectedJkt?: string
}

export interface VerifiedDpopProof {
  jti: string
  jkt: string
  htm: string
  htu: string
  iat: number
}

/** base64url(SHA-256(token)): the `ath` claim. */
export function accessTokenHash(token: string): string {
  return toBase64Url(sha256(token))
}

/** Origin + path, without query or fragment (RFC 9449 §4.3 point 9). */
export function normalizeHtu(url: string): string | undefined {
  try {
    const u = new URL(url)
    return `${u.origin}${u.pathname}`
  } catch {
    return undefined
  }
}

export async function verifyDpopProof(proof: string, check: DpopCheck): Promise<VerifiedDpopProof> {
  let payload: Record<string, unknown>
  let jwk: JWK
  try {
    const res = await jwtVerify(proof, EmbeddedJWK, {
      typ: 'dpop+jwt',
      algorithms: ['ES256'],
      currentDate: new Date(check.nowSec * 1000),
      maxTokenAge: DPOP_MAX_AGE_SEC,
      clockTolerance: DPOP_SKEW_SEC,
    })
    payload = res.payload as Record<string, unknown>
    jwk = res.protectedHeader.jwk as JWK
  } catch (err) {
    if (err instanceof joseErrors.JWTExpired) {
      throw new SignatureError('DpopProofExpired', `DPoP proof is expired: ${err.message}`)
    }
    const reason = err instanceof Error ? err.message : 'invalid'
    throw new SignatureError('BadDpopProofSignature', `could not verify DPoP proof: ${reason}`)
  }
  if ('d' in jwk) throw new SignatureError('BadDpopProof', 'DPoP proof embeds a private key')
  const { jti, htm, htu, iat, ath } = payload
  if (!isJti(jti)) {
    throw new SignatureError('BadDpopProof', 'DPoP proof "jti" is missing or malformed')
  }
  if (htm !== check.htm)
    throw new SignatureError('BadDpopProof', 'DPoP proof "htm" does not match the request')
  const want = normalizeHtu(check.htu)
  if (typeof htu !== 'string' || want === undefined || normalizeHtu(htu) !== want) {
    throw new SignatureError('BadDpopProof', 'DPoP proof "htu" does not match the request')
  }
  const jkt = await calculateJwkThumbprint(jwk, 'sha256')
  if (check.expectedJkt !== undefined && jkt !== check.expectedJkt) {
    throw new SignatureError(
      'DpopKeyMismatch',
      'DPoP proof is not signed by the key the credential is bound to',
    )
  }
  if (check.accessToken === undefined) {
    if (ath !== undefined) {
      throw new SignatureError(
        'BadDpopProof',
        'DPoP proof "ath" must be omitted when obtaining a credential',
      )
    }
  } else if (ath !== accessTokenHash(check.accessToken)) {
    throw new SignatureError('BadDpopProof', 'DPoP proof "ath" does not match the credential')
  }
  return { jti, jkt, htm, htu, iat: iat as number }
}

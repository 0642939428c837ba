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
 * Generation A's credential binding, DPoP (RFC 9449), kept for compatibility (contract §3.6). `ath`
 * is required when presenting a credential, forbidden when obtaining one. Replay of `jti` is the
 * caller's check.
 */

export const DPOP_MAX_AGE_SEC = 60
export const DPOP_SKEW_SEC = 5

export interface DpopCheck {
  htm: string
  /** As the client addressed it (public origin + path). */
  htu: string
  nowSec: number
  /** The credential presented, and its `cnf.jkt`. */
  accessToken?: string
  expectedJkt?: string
}

export interface VerifiedDpopProof {
  jti: string
  jkt: string
  htm: string
  htu: string
  iat: number
}

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

import { isDid } from '../lexicon/formats.js'
import { TokenError } from './errors.js'
import { parseJws, signJws } from './jws.js'
import type { Keypair } from './keypair.js'
import { assertTokenTimes, randomJti, verifyWithRefresh, type PublicKey } from './space-token.js'

/** atproto service auth: inter-service JWTs sent as `Authorization: Bearer`. */

export const SERVICE_JWT_TTL_SEC = 60
/** A PDS's getServiceAuth mints method-bound tokens for up to an hour; managers call with those. */
export const MAX_SERVICE_JWT_TTL_SEC = 3600

/** Token types that are never service auth: OAuth access and refresh tokens, DPoP proofs. */
const FOREIGN_TYPES = new Set(['at+jwt', 'refresh+jwt', 'dpop+jwt'])

export interface ServiceJwtClaims {
  iss: string
  aud: string
  lxm: string
  exp: number
  iat: number | undefined
  jti: string | undefined
}

export interface ServiceJwtOptions {
  iss: string
  aud: string
  lxm: string
  key: Keypair
  nowSec: number
  ttlSec?: number
}

export function createServiceJwt(opts: ServiceJwtOptions): string {
  const payload = {
    iat: opts.nowSec,
    iss: opts.iss,
    aud: opts.aud,
    exp: opts.nowSec + (opts.ttlSec ?? SERVICE_JWT_TTL_SEC),
    lxm: opts.lxm,
    jti: randomJti(),
  }
  return signJws({ typ: 'JWT' }, payload, opts.key)
}

/** Labelers addressed as `did#atproto_labeler` sign with `#atproto_label`. */
export type ServiceKeyId = '#atproto' | '#atproto_label'

export interface ServiceVerifyOptions {
  nowSec: number
  lxm: string
  /** Accepted audiences; undefined leaves the audience to the handler. */
  aud?: readonly string[]
  getSigningKey: (
    did: string,
    kid: ServiceKeyId,
    forceRefresh: boolean,
  ) => Promise<PublicKey | undefined>
}

/**
 * In xrpc-server's order (expiry with no skew; high S allowed), plus bounded lifetime and no future
 * `iat`. No replay check: service auth has none on the wire.
 */
export async function verifyServiceJwt(
  token: string,
  opts: ServiceVerifyOptions,
): Promise<ServiceJwtClaims> {
  const jws = parseJws(token)
  const typ = jws.header.typ
  if (typeof typ === 'string' && FOREIGN_TYPES.has(typ)) {
    throw new TokenError('BadJwtType', `invalid jwt type "${typ}"`)
  }
  const p = jws.payload
  if (typeof p.exp !== 'number' || !Number.isFinite(p.exp))
    throw new TokenError('BadJwt', 'jwt "exp" is missing')
  if (opts.nowSec > p.exp) throw new TokenError('JwtExpired', 'jwt expired')
  assertTokenTimes({ iat: p.iat, exp: p.exp }, opts.nowSec, MAX_SERVICE_JWT_TTL_SEC, 'jwt')
  if (typeof p.aud !== 'string' || p.aud.length === 0) {
    throw new TokenError('BadJwtAudience', 'jwt audience is missing')
  }
  if (opts.aud !== undefined && !opts.aud.includes(p.aud)) {
    throw new TokenError('BadJwtAudience', 'jwt audience does not match service did')
  }
  if (p.lxm === undefined) {
    throw new TokenError(
      'BadJwtLexiconMethod',
      `missing jwt lexicon method ("lxm"). must match: ${opts.lxm}`,
    )
  }
  if (p.lxm !== opts.lxm) {
    throw new TokenError(
      'BadJwtLexiconMethod',
      `bad jwt lexicon method ("lxm"). must match: ${opts.lxm}`,
    )
  }
  if (typeof p.iss !== 'string') throw new TokenError('BadJwtIss', 'jwt "iss" is missing')
  const [did, fragment, ...extra] = p.iss.split('#')
  if (!did || !isDid(did) || extra.length > 0 || fragment === '') {
    throw new TokenError('BadJwtIss', 'jwt "iss" must be a DID, optionally with a #fragment')
  }
  const kid: ServiceKeyId = fragment === 'atproto_labeler' ? '#atproto_label' : '#atproto'
  await verifyWithRefresh(
    jws,
    did,
    kid,
    opts.getSigningKey,
    { allowHighS: true },
    'jwt signature does not match jwt issuer',
  )
  return {
    iss: p.iss,
    aud: p.aud,
    lxm: p.lxm,
    exp: p.exp,
    iat: typeof p.iat === 'number' ? p.iat : undefined,
    jti: typeof p.jti === 'string' ? p.jti : undefined,
  }
}

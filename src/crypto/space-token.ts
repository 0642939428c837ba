import { randomFillSync } from 'node:crypto'
import { isDid, parseSpaceRef, type SpaceRef } from '../lexicon/formats.js'
import type { Curve } from './did-key.js'
import { TokenError } from './errors.js'
import { parseJws, signJws, verifyJws, type ParsedJws } from './jws.js'
import type { Keypair } from './keypair.js'

/**
 * atproto Spaces tokens (contract §3): delegation tokens (PDS → host), credentials (host → holder),
 * client attestations (app → host). Single use of `jti` is src/auth/verifier.ts's job, done after the
 * signature so strangers cannot burn nonces.
 */

/** Clock skew allowed on `exp`, and how far ahead of our clock any token's `iat` may be. */
export const CLOCK_SKEW_SEC = 5
/** Five times the reference's 60 s, for PDSes that mint longer; bounds how long a `jti` is held. */
export const MAX_DELEGATION_TTL_SEC = 300
/** GATEHOUSE_ATTESTATION_MAX_LIFETIME_SEC may only narrow this; the reference's clients use 60 s. */
export const MAX_ATTESTATION_TTL_SEC = 3600
/** Our credentials' default lifetime (generation C). */
export const CREDENTIAL_TTL_SEC = 600
/**
 * Generation A (DPoP) credentials: shorter, as a generation A repo host, with no
 * notifyCredentialRevoked, honours a revoked credential until it expires.
 */
export const DPOP_CREDENTIAL_TTL_SEC = 300
export const CREDENTIAL_MAX_TTL_SEC = 3600
/** Ours are 32 hex characters. */
export const MAX_JTI_LENGTH = 256

/** Visible ASCII: NUL, control characters, lone surrogates differ between SQLite and PostgreSQL. */
export const isJti = (s: unknown): s is string =>
  typeof s === 'string' && s.length <= MAX_JTI_LENGTH && /^[\x21-\x7e]+$/.test(s)

export type SpaceTokenKind = 'delegation' | 'credential' | 'attestation'

/** Each kind's `typ`, longest lifetime, and name in refusals. */
type TokenType = { typ: string; maxTtl: number; name: string }
export const SPACE_TOKEN_TYPES: Record<SpaceTokenKind, TokenType> = {
  delegation: {
    typ: 'atproto-space-delegation+jwt',
    maxTtl: MAX_DELEGATION_TTL_SEC,
    name: 'delegation token',
  },
  credential: {
    typ: 'atproto-space-credential+jwt',
    maxTtl: CREDENTIAL_MAX_TTL_SEC,
    name: 'credential',
  },
  attestation: {
    typ: 'atproto-client-attestation+jwt',
    maxTtl: MAX_ATTESTATION_TTL_SEC,
    name: 'client attestation',
  },
}

export const SPACE_TOKEN_KIDS = ['#atproto', '#atproto_space'] as const
export type SpaceTokenKid = (typeof SPACE_TOKEN_KIDS)[number]

export type Confirmation = { kid: string } | { jkt: string }

export interface SpaceTokenClaims {
  iss: string
  sub: string
  aud?: string
  cnf?: Confirmation
  iat?: number
  exp: number
  jti: string
}

export interface ParsedSpaceToken {
  kind: SpaceTokenKind
  jws: ParsedJws
  kid: string | undefined
  claims: SpaceTokenClaims
  /** For delegation tokens and credentials. */
  space: SpaceRef | undefined
}

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)
const isStr = (v: unknown): v is string => typeof v === 'string' && v.length > 0

function parseCnf(raw: unknown): Confirmation {
  if (typeof raw !== 'object' || raw === null)
    throw new TokenError('BadJwtCnf', 'token "cnf" is missing')
  const { kid, jkt } = raw as { kid?: unknown; jkt?: unknown }
  if (kid !== undefined) {
    if (!isStr(kid) || !isDid(kid))
      throw new TokenError('BadJwtCnf', 'token "cnf.kid" must be a DID')
    return { kid }
  }
  if (isStr(jkt) && /^[A-Za-z0-9_-]{43}$/.test(jkt)) return { jkt }
  throw new TokenError('BadJwtCnf', 'token "cnf" names no key')
}

/**
 * Time rules beyond expiry (checked by the verifier, so `exp` before `iat` stays JwtExpired as in
 * the reference). Bounded lifetimes keep single-use records bounded and absurd dates out of storage.
 */
export function assertTokenTimes(
  claims: { iat?: unknown; exp: number },
  nowSec: number,
  maxTtlSec: number,
  what: string,
): void {
  const { iat, exp } = claims
  if (iat === undefined) {
    if (exp - nowSec > maxTtlSec + CLOCK_SKEW_SEC)
      throw new TokenError('BadJwt', `${what} lifetime exceeds ${maxTtlSec} s`)
    return
  }
  if (!isNum(iat)) throw new TokenError('BadJwt', `${what} "iat" is not a number`)
  // A token issued in the future is a broken clock, or one minted ahead to outlive its lifetime.
  if (iat > nowSec + CLOCK_SKEW_SEC) throw new TokenError('BadJwt', `${what} is not yet valid`)
  if (exp - iat > maxTtlSec)
    throw new TokenError('BadJwt', `${what} lifetime exceeds ${maxTtlSec} s`)
}

/** Structure and the claims that need no key, in the reference's order; then the time rules. */
export function parseSpaceToken(
  kind: SpaceTokenKind,
  token: string,
  nowSec: number,
): ParsedSpaceToken {
  const type = SPACE_TOKEN_TYPES[kind]
  const jws = parseJws(token)
  const { header, payload: p } = jws
  if (header.typ !== type.typ) {
    throw new TokenError(
      'BadJwtType',
      `wrong token type: expected "${type.typ}", got ${JSON.stringify(header.typ ?? null)}`,
    )
  }
  if (!isStr(p.iss)) throw new TokenError('BadJwtIss', 'token "iss" is missing')
  if (!isStr(p.sub)) throw new TokenError('BadJwtSub', 'token "sub" is missing')
  if (!isNum(p.exp)) throw new TokenError('BadJwt', 'token "exp" is missing or not a number')
  if (kind !== 'credential' && !isStr(p.aud))
    throw new TokenError('BadJwtAudience', 'token "aud" is missing')
  const cnf = kind === 'credential' ? parseCnf(p.cnf) : undefined
  if (!isJti(p.jti)) {
    throw new TokenError('BadJwt', 'token "jti" is missing, too long or not visible ASCII')
  }
  if (p.iat !== undefined && !isNum(p.iat))
    throw new TokenError('BadJwt', 'token "iat" is not a number')
  if (kind === 'attestation' && p.iss !== p.sub) {
    throw new TokenError(
      'BadJwtIss',
      'client attestation "iss" and "sub" must both be the client_id',
    )
  }
  if (kind === 'credential') {
    if (!isNum(p.iat)) throw new TokenError('BadJwt', `${kind} "iat" is missing`)
    if (p.exp <= p.iat) throw new TokenError('BadJwt', `${kind} "exp" is not after "iat"`)
  }
  assertTokenTimes({ iat: p.iat, exp: p.exp }, nowSec, type.maxTtl, type.name)
  let space: SpaceRef | undefined
  if (kind !== 'attestation') {
    space = parseSpaceRef(p.sub)
    if (!space) throw new TokenError('BadJwtSub', 'token "sub" is not a space reference')
  }
  const claims: SpaceTokenClaims = { iss: p.iss, sub: p.sub, exp: p.exp, jti: p.jti }
  if (isStr(p.aud)) claims.aud = p.aud
  if (cnf) claims.cnf = cnf
  if (isNum(p.iat)) claims.iat = p.iat
  return { kind, jws, kid: typeof header.kid === 'string' ? header.kid : undefined, claims, space }
}

export interface PublicKey {
  curve: Curve
  publicKey: Uint8Array
}

/** Undefined when the DID or key is not found; `forceRefresh` refetches (a rotated key). */
export type GetSigningKey = (
  iss: string,
  kid: SpaceTokenKid,
  forceRefresh: boolean,
) => Promise<PublicKey | undefined>

export interface VerifyOptions {
  nowSec: number
  expectedAud?: string
  expectedSub?: string
  getSigningKey: GetSigningKey
}

/** Time, the expected `aud`/`sub` and the signature (low-S); not replay or binding. */
export async function verifySpaceToken(
  token: ParsedSpaceToken,
  opts: VerifyOptions,
): Promise<void> {
  const { claims } = token
  if (opts.nowSec - CLOCK_SKEW_SEC >= claims.exp)
    throw new TokenError('JwtExpired', 'token expired')
  if (opts.expectedAud !== undefined && claims.aud !== opts.expectedAud) {
    throw new TokenError('BadJwtAudience', 'token audience does not match this service')
  }
  if (opts.expectedSub !== undefined && claims.sub !== opts.expectedSub) {
    throw new TokenError('BadJwtSub', 'token subject does not match the requested space')
  }
  if (token.kid === undefined) throw new TokenError('BadJwt', 'token header has no "kid"')
  const kid = SPACE_TOKEN_KIDS.find((k) => k === token.kid)
  if (!kid)
    throw new TokenError('BadJwt', `token "kid" must be one of ${SPACE_TOKEN_KIDS.join(', ')}`)
  await verifyWithRefresh(
    token.jws,
    claims.iss,
    kid,
    opts.getSigningKey,
    { allowHighS: false },
    'invalid token signature',
  )
}

/** Verifies, refetching the key once on failure (a rotated key). */
export async function verifyWithRefresh<K extends string>(
  jws: ParsedJws,
  iss: string,
  kid: K,
  getKey: (iss: string, kid: K, forceRefresh: boolean) => Promise<PublicKey | undefined>,
  opts: { allowHighS: boolean },
  badSignatureMessage: string,
): Promise<void> {
  const key = await getKey(iss, kid, false)
  if (!key) throw new TokenError('BadJwtIss', `could not resolve the ${kid} key of ${iss}`)
  if (await verifyJws(jws, key, opts)) return
  const fresh = await getKey(iss, kid, true)
  if (fresh && (await verifyJws(jws, fresh, opts))) return
  throw new TokenError('BadJwtSignature', badSignatureMessage)
}

/** 128 random bits as hex from a pool refilled every 256 ids: a CSPRNG call per id loaded the GC. */
export function randomJti(): string {
  if (jtiOffset === JTI_POOL.length) {
    randomFillSync(JTI_POOL)
    jtiOffset = 0
  }
  jtiOffset += 16
  return JTI_POOL.toString('hex', jtiOffset - 16, jtiOffset)
}
const JTI_POOL = Buffer.alloc(16 * 256)
let jtiOffset = JTI_POOL.length

export function createSpaceToken(
  kind: SpaceTokenKind,
  claims: Omit<SpaceTokenClaims, 'jti'> & { jti?: string },
  key: Keypair,
  kid: string = '#atproto',
): string {
  const { iss, sub, aud, cnf, iat, exp, jti = randomJti() } = claims
  const payload = { iss, sub, aud, cnf, iat, exp, jti } // JSON leaves out the undefined ones
  return signJws({ typ: SPACE_TOKEN_TYPES[kind].typ, kid }, payload, key)
}

import { randomFillSync } from 'node:crypto'
import { isDid, parseSpaceRef, type SpaceRef } from '../lexicon/formats.js'
import type { Curve } from './did-key.js'
import { TokenError } from './errors.js'
import { parseJws, signJws, verifyJws, type ParsedJws } from './jws.js'
import type { Keypair } from './keypair.js'

/**
 * atproto Spaces tokens (wire contract §3): delegation tokens (user's PDS → space host), space
 * credentials (space host → holder) and client attestations (app → space host). Parse and verify are
 * separate stages: `parseSpaceToken` checks structure and claims that need no key; `verifySpaceToken`
 * checks time, audience, subject and the signature. Neither records `jti`s: single use is the
 * caller's job (src/auth/verifier.ts), done after the signature so strangers cannot burn nonces.
 */

/** Clock skew allowed on `exp`, and how far ahead of our clock any token's `iat` may be. */
export const CLOCK_SKEW_SEC = 5
/**
 * Verifiers refuse delegation tokens living longer than this. Five times the reference's 60 s, for
 * PDSes that mint longer ones; their `jti` is held this long at most.
 */
export const MAX_DELEGATION_TTL_SEC = 300
/**
 * No client attestation lives longer than this, whatever GATEHOUSE_ATTESTATION_MAX_LIFETIME_SEC
 * (which may only narrow it) says; clients choose their own lifetime, 60 s in the reference.
 */
export const MAX_ATTESTATION_TTL_SEC = 3600
/** Our credentials' default lifetime (generation C). */
export const CREDENTIAL_TTL_SEC = 600
/**
 * Default lifetime of DPoP-bound (generation A) credentials. Shorter than generation C's: a
 * generation A repo host has no notifyCredentialRevoked, so it honours a revoked credential until
 * it expires, and this is how long a removed member can still read there.
 */
export const DPOP_CREDENTIAL_TTL_SEC = 300
/** Verifiers refuse credentials whose lifetime is longer than this. */
export const CREDENTIAL_MAX_TTL_SEC = 3600
/** Longest `jti` accepted; ours are 32 hex characters. */
export const MAX_JTI_LENGTH = 256

/**
 * A token id we will store as a single-use record: 1–MAX_JTI_LENGTH visible ASCII characters. Real
 * ids are hex, UUIDs or base64url; anything else (NUL, control characters, lone surrogates) could
 * not be stored alike on SQLite and PostgreSQL, so it is refused as a malformed token.
 */
export const isJti = (s: unknown): s is string =>
  typeof s === 'string' && s.length <= MAX_JTI_LENGTH && /^[\x21-\x7e]+$/.test(s)

export type SpaceTokenKind = 'delegation' | 'credential' | 'attestation'

interface TokenType {
  typ: string
  /** The longest lifetime accepted (from `iat`, or from now when there is none). */
  maxTtlSec: number
  /** `iat` must be present, and `exp` after it (generation C credentials). */
  requireIat: boolean
  /** `aud` must be present. */
  requireAud: boolean
  /** `cnf` must be present (credentials are bound to a key). */
  requireCnf: boolean
  /** `sub` must be a space reference. */
  subIsSpace: boolean
}

export const SPACE_TOKEN_TYPES: Record<SpaceTokenKind, TokenType> = {
  delegation: {
    typ: 'atproto-space-delegation+jwt',
    maxTtlSec: MAX_DELEGATION_TTL_SEC,
    requireIat: false,
    requireAud: true,
    requireCnf: false,
    subIsSpace: true,
  },
  credential: {
    typ: 'atproto-space-credential+jwt',
    maxTtlSec: CREDENTIAL_MAX_TTL_SEC,
    requireIat: true,
    requireAud: false,
    requireCnf: true,
    subIsSpace: true,
  },
  attestation: {
    typ: 'atproto-client-attestation+jwt',
    maxTtlSec: MAX_ATTESTATION_TTL_SEC,
    requireIat: false,
    requireAud: true,
    requireCnf: false,
    subIsSpace: false,
  },
}

/** How refusals name each kind. */
const TOKEN_NAMES: Record<SpaceTokenKind, string> = {
  delegation: 'delegation token',
  credential: 'credential',
  attestation: 'client attestation',
}

/** The verification methods a space token's `kid` may name. */
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
  /** The space in `sub`, for delegation tokens and credentials. */
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
 * The time rules every token kind shares, beyond expiry (which the verifier checks, so that an `exp`
 * before `iat` stays JwtExpired as in the reference). `iat`, when present, must be a number no more
 * than CLOCK_SKEW_SEC ahead of `nowSec`, with `exp` at most `maxTtlSec` after it; without `iat`,
 * `exp` may be at most `maxTtlSec` (plus the skew) ahead. Throws BadJwt, naming the token as `what`.
 */
export function assertTokenTimes(
  claims: { iat?: unknown; exp: number },
  nowSec: number,
  maxTtlSec: number,
  what: string,
): void {
  const { iat, exp } = claims
  // Bounding every lifetime keeps single-use records (held until `exp`) bounded too, and keeps
  // absurd times (beyond what a Date holds) from ever reaching storage.
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

/**
 * Structural checks for one token kind, in the reference's order: three parts, `typ`, `alg`, `iss`,
 * `sub`, `exp`, `aud` and `cnf` where required, `jti`; attestations need `iss === sub`; credentials
 * need `iat`. Then the time rules of `assertTokenTimes`, with the kind's longest lifetime
 * (credentials: CREDENTIAL_MAX_TTL_SEC, as generation C's verifiers; delegation tokens:
 * MAX_DELEGATION_TTL_SEC; attestations: MAX_ATTESTATION_TTL_SEC).
 */
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
  if (type.requireAud && !isStr(p.aud))
    throw new TokenError('BadJwtAudience', 'token "aud" is missing')
  const cnf = type.requireCnf ? parseCnf(p.cnf) : undefined
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
  if (type.requireIat) {
    if (!isNum(p.iat)) throw new TokenError('BadJwt', `${kind} "iat" is missing`)
    if (p.exp <= p.iat) throw new TokenError('BadJwt', `${kind} "exp" is not after "iat"`)
  }
  assertTokenTimes({ iat: p.iat, exp: p.exp }, nowSec, type.maxTtlSec, TOKEN_NAMES[kind])
  let space: SpaceRef | undefined
  if (type.subIsSpace) {
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

/**
 * Looks up the issuer's key named by `kid`. Returns undefined when the DID or the key cannot be
 * found. `forceRefresh` asks for a fresh DID document (the issuer may have rotated its key).
 */
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

/**
 * Checks time (`exp` with CLOCK_SKEW_SEC), the optional `aud`/`sub` expectations, and the signature
 * (low-S) by the issuer's `#atproto` or `#atproto_space` key, re-resolving the key once when the
 * signature fails so a rotated key is picked up. Does not check replay or binding.
 */
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

/**
 * The shared "verify, and on failure refetch the key once" step. Throws BadJwtIss when the key
 * cannot be found and BadJwtSignature when it does not verify.
 */
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

/**
 * 128 random bits as hex, taken from a buffer the CSPRNG refills every 256 ids (as node:crypto's
 * randomUUID does): a random call per id made a native job object per id for the GC to process.
 */
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

/** Mints a space token: header `{ alg, typ, kid }`, signed low-S by `key`. */
export function createSpaceToken(
  kind: SpaceTokenKind,
  claims: Omit<SpaceTokenClaims, 'jti'> & { jti?: string },
  key: Keypair,
  kid: string = '#atproto',
): string {
  const payload: Record<string, unknown> = { iss: claims.iss, sub: claims.sub }
  if (claims.aud !== undefined) payload.aud = claims.aud
  if (claims.cnf !== undefined) payload.cnf = claims.cnf
  if (claims.iat !== undefined) payload.iat = claims.iat
  payload.exp = claims.exp
  payload.jti = claims.jti ?? randomJti()
  return signJws({ typ: SPACE_TOKEN_TYPES[kind].typ, kid }, payload, key)
}

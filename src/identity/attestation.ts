import { createLocalJWKSet, errors as joseErrors, jwtVerify, type JSONWebKeySet } from 'jose'
import type { ReplayStore } from '../auth/replay.js'
import type { Clock } from '../clock.js'
import { TokenError } from '../crypto/errors.js'
import { parseSpaceToken, SPACE_TOKEN_TYPES } from '../crypto/space-token.js'
import type { SafeFetcher } from '../net/safe-fetch.js'

/** Client attestations (contract §3.2); every failure is 400 InvalidClientAttestation. */
export class AttestationError extends Error {
  override name = 'AttestationError'
}

/** Asymmetric algorithms only: a symmetric key in public metadata would let anyone forge. */
const ALGORITHMS = [
  'ES256',
  'ES384',
  'ES512',
  'PS256',
  'PS384',
  'PS512',
  'RS256',
  'RS384',
  'RS512',
  'EdDSA',
  'Ed25519',
]

export interface AttestationVerifierOptions {
  fetcher: SafeFetcher
  replay: ReplayStore
  clock: Clock
  cacheTtlMs: number
  cacheMaxEntries: number
  /** Attestations may not outlive this (their jti is held until exp). */
  maxLifetimeSec: number
}

type Cached<T> = { value: T; expiresAtMs: number }

export class ClientAttestationVerifier {
  private readonly metadata = new Map<string, Cached<Record<string, unknown>>>()
  private readonly jwks = new Map<string, Cached<JSONWebKeySet>>()

  constructor(private readonly opts: AttestationVerifierOptions) {}

  private cached<T>(map: Map<string, Cached<T>>, key: string): T | undefined {
    const hit = map.get(key)
    return hit && hit.expiresAtMs > this.opts.clock.nowMs() ? hit.value : undefined
  }

  private remember<T>(map: Map<string, Cached<T>>, key: string, value: T): T {
    map.delete(key)
    map.set(key, { value, expiresAtMs: this.opts.clock.nowMs() + this.opts.cacheTtlMs })
    while (map.size > this.opts.cacheMaxEntries) map.delete(map.keys().next().value!)
    return value
  }

  private async clientMetadata(clientId: string): Promise<Record<string, unknown>> {
    const hit = this.cached(this.metadata, clientId)
    if (hit) return hit
    let doc: unknown
    try {
      doc = await this.opts.fetcher.getJson(clientId, { maxBytes: 64 * 1024 })
    } catch {
      throw new AttestationError(`Could not resolve client metadata for "${clientId}"`)
    }
    if (
      typeof doc !== 'object' ||
      doc === null ||
      (doc as { client_id?: unknown }).client_id !== clientId
    ) {
      throw new AttestationError(
        `Could not resolve client metadata for "${clientId}": not OAuth client metadata for this client_id`,
      )
    }
    return this.remember(this.metadata, clientId, doc as Record<string, unknown>)
  }

  private async clientJwks(clientId: string, forceRefresh: boolean): Promise<JSONWebKeySet> {
    const meta = await this.clientMetadata(clientId)
    const inline = meta.jwks as JSONWebKeySet | undefined
    if (inline && Array.isArray(inline.keys)) return inline
    const uri = meta.jwks_uri
    if (typeof uri !== 'string')
      throw new AttestationError(`Client "${clientId}" publishes no keys`)
    if (!forceRefresh) {
      const hit = this.cached(this.jwks, uri)
      if (hit) return hit
    }
    let set: unknown
    try {
      set = await this.opts.fetcher.getJson(uri, { maxBytes: 64 * 1024 })
    } catch {
      throw new AttestationError(`Could not resolve client JWKS for "${clientId}"`)
    }
    if (typeof set !== 'object' || set === null || !Array.isArray((set as JSONWebKeySet).keys)) {
      throw new AttestationError(`Could not resolve client JWKS for "${clientId}": not a JWK set`)
    }
    return this.remember(this.jwks, uri, set as JSONWebKeySet)
  }

  /** Verifies `token` for `expectedAud`, spends its `jti`, and returns the attested client_id. */
  async verify(token: string, expectedAud: string): Promise<{ clientId: string }> {
    const now = this.opts.clock.nowSec()
    let clientId: string
    try {
      clientId = parseSpaceToken('attestation', token, now).claims.iss
    } catch (err) {
      // The reference answers these with a 500; a conforming host refuses them as invalid.
      if (err instanceof TokenError)
        throw new AttestationError(`Invalid client attestation: ${err.message}`)
      throw err
    }
    let payload: Record<string, unknown> | undefined
    for (const forceRefresh of [false, true]) {
      const jwks = await this.clientJwks(clientId, forceRefresh)
      try {
        const res = await jwtVerify(token, createLocalJWKSet(jwks), {
          issuer: clientId,
          subject: clientId,
          audience: expectedAud,
          typ: SPACE_TOKEN_TYPES.attestation.typ,
          requiredClaims: ['jti', 'exp'],
          algorithms: ALGORITHMS,
          currentDate: this.opts.clock.now(),
          clockTolerance: 0,
        })
        payload = res.payload as Record<string, unknown>
        break
      } catch (err) {
        // A key we have not seen: the client may have rotated; look at its JWKS again, once.
        if (!forceRefresh && err instanceof joseErrors.JWKSNoMatchingKey) continue
        throw new AttestationError(
          `Invalid client attestation for "${clientId}": ${(err as Error).message}`,
        )
      }
    }
    const exp = payload!.exp as number
    if (exp - now > this.opts.maxLifetimeSec) {
      throw new AttestationError(
        `Invalid client attestation for "${clientId}": lifetime exceeds ${this.opts.maxLifetimeSec} s`,
      )
    }
    const fresh = await this.opts.replay.consume(
      `attestation@${clientId}`,
      payload!.jti as string,
      new Date(exp * 1000),
    )
    if (!fresh)
      throw new AttestationError(`Client attestation for "${clientId}" has already been used`)
    return { clientId }
  }
}

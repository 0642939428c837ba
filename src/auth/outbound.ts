import type { Clock } from '../clock.js'
import type { Curve } from '../crypto/did-key.js'
import type { Keypair } from '../crypto/keypair.js'
import type { Signer } from '../crypto/jws.js'
import { createServiceJwtWith, SERVICE_JWT_TTL_SEC } from '../crypto/service-auth.js'

/**
 * Service auth for Gatehouse's outbound calls (relayed notifications, revocation notices,
 * managing-app checks), signed as the authority. Signing costs about a millisecond, and a relay
 * fanning one write out to a thousand syncers would otherwise sign a thousand tokens per write: a
 * token for the same issuer, audience, method and key is reused for `reuseSec` of its lifetime.
 * Service auth carries no single-use requirement on the wire (contract §3.5: receivers check `iss`,
 * `aud`, `lxm`, `exp` and the signature; no `jti` replay check), so a reused token is as good as a
 * fresh one. `reuseSec = 0` signs every call afresh.
 */
export class OutboundAuth {
  private readonly cache = new Map<string, { jwt: Promise<string>; until: number }>()

  constructor(
    private readonly signer: Signer,
    private readonly clock: Clock,
    private readonly reuseSec: number,
    private readonly maxEntries = 10_000,
  ) {
    if (reuseSec >= SERVICE_JWT_TTL_SEC)
      throw new Error('a reused service token must still have life left when it is sent')
  }

  token(opts: TokenFor): Promise<string> {
    const nowSec = this.clock.nowSec()
    if (this.reuseSec === 0) return createServiceJwtWith(this.signer, { ...opts, nowSec })
    const id = cacheId(opts)
    const hit = this.cache.get(id)
    if (hit && hit.until > nowSec) return hit.jwt
    // The promise is cached, so concurrent calls share one signature.
    const jwt = createServiceJwtWith(this.signer, { ...opts, nowSec })
    jwt.catch(() => this.cache.delete(id))
    this.cache.delete(id)
    this.cache.set(id, { jwt, until: nowSec + this.reuseSec })
    this.trim()
    return jwt
  }

  /**
   * Makes sure the token `token(opts)` would return stays reusable for at least `forSec` more
   * seconds, signing a new one when it would not — but only on an idle signing thread, so it never
   * delays a request. Callers keep the current token until the new one is ready. Resolves true when
   * it signed.
   */
  async prewarm(opts: TokenFor, forSec: number): Promise<boolean> {
    if (!this.canSignAhead(opts.key.curve)) return false
    const id = cacheId(opts)
    const nowSec = this.clock.nowSec()
    const hit = this.cache.get(id)
    if (hit && hit.until >= nowSec + forSec) return false
    let jwt: string
    try {
      jwt = await createServiceJwtWith(this.signer, { ...opts, nowSec })
    } catch {
      return false
    }
    const until = nowSec + this.reuseSec
    const current = this.cache.get(id)
    if (!current || current.until < until) {
      this.cache.delete(id)
      this.cache.set(id, { jwt: Promise.resolve(jwt), until })
      this.trim()
    }
    return true
  }

  /**
   * Whether `prewarm` could sign with a key of `curve` now (without a curve: with a key of some
   * curve): tokens are reused, and a signing thread is idle for that curve (never for ES256K where
   * libsecp256k1 signs it inline, in under 0.1 ms: signing ahead pays only for slow signatures).
   */
  canSignAhead(curve?: Curve): boolean {
    return this.reuseSec > 0 && this.signer.hasIdleThread?.(curve) === true
  }

  /** The reusable token for `opts` if one is held now (never signs). */
  peek(opts: TokenFor): Promise<string> | undefined {
    const hit = this.cache.get(cacheId(opts))
    return hit && hit.until > this.clock.nowSec() ? hit.jwt : undefined
  }

  private trim(): void {
    if (this.cache.size > this.maxEntries) this.cache.delete(this.cache.keys().next().value!)
  }
}

export interface TokenFor {
  iss: string
  aud: string
  lxm: string
  key: Keypair
}

const cacheId = (opts: TokenFor) => `${opts.iss} ${opts.aud} ${opts.lxm} ${opts.key.did()}`

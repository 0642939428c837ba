import type { Clock } from '../clock.js'
import {
  createServiceJwt,
  SERVICE_JWT_TTL_SEC,
  type ServiceJwtOptions,
} from '../crypto/service-auth.js'

/**
 * Service auth for outbound calls, signed as the authority. A token for the same issuer, audience,
 * method and key is reused for `reuseSec` (0: never), so a relay to a thousand syncers does not sign
 * a thousand: service auth is not single use on the wire (contract §3.5: no `jti` replay check).
 */
export class OutboundAuth {
  private readonly cache = new Map<string, { jwt: string; until: number }>()

  constructor(
    private readonly clock: Clock,
    private readonly reuseSec: number,
    private readonly maxEntries = 10_000,
  ) {
    if (reuseSec >= SERVICE_JWT_TTL_SEC)
      throw new Error('a reused service token must still have life left when it is sent')
  }

  token(opts: TokenFor): string {
    const nowSec = this.clock.nowSec()
    if (this.reuseSec === 0) return createServiceJwt({ ...opts, nowSec })
    const id = `${opts.iss} ${opts.aud} ${opts.lxm} ${opts.key.did()}`
    const hit = this.cache.get(id)
    if (hit && hit.until > nowSec) return hit.jwt
    const jwt = createServiceJwt({ ...opts, nowSec })
    this.cache.delete(id)
    this.cache.set(id, { jwt, until: nowSec + this.reuseSec })
    if (this.cache.size > this.maxEntries) this.cache.delete(this.cache.keys().next().value!)
    return jwt
  }
}

type TokenFor = Pick<ServiceJwtOptions, 'iss' | 'aud' | 'lxm' | 'key'>

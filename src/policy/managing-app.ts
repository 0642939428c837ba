import type { Clock } from '../clock.js'
import type { Keypair } from '../crypto/keypair.js'
import type { OutboundAuth } from '../auth/outbound.js'
import type { DidResolver } from '../identity/resolver.js'
import type { Logger } from '../logger.js'
import type { SafeFetcher } from '../net/safe-fetch.js'
import type { AccessQuestion } from './types.js'

export const CHECK_USER_ACCESS = 'com.atproto.simplespace.checkUserAccess'

export interface ManagingAppDeps {
  resolver: DidResolver
  fetcher: SafeFetcher
  /** The authority's `#atproto` key: service auth is signed as the bare authority DID. */
  authorityKey(did: string): Promise<Keypair | undefined>
  clock: Clock
  /** Signs (and reuses) service auth as the authority. */
  outbound: OutboundAuth
  logger: Logger
  /** The whole decision (resolution and request) must finish within this, or it is a denial. */
  timeoutMs: number
  /** Reuse definite answers this long; 0 turns the cache off. Failures are never cached. */
  cacheTtlMs: number
}

/** `checkUserAccess` (contract §1.8): anything but a timely 200 `authorized: true` is a denial. */
export class ManagingAppClient {
  private readonly cache = new Map<string, { authorized: boolean; expiresAtMs: number }>()

  constructor(private readonly deps: ManagingAppDeps) {}

  async checkUserAccess(req: AccessQuestion): Promise<boolean> {
    const cacheKey = [
      req.config.uri,
      req.managingApp,
      req.user,
      req.access,
      req.clientId ?? '',
    ].join('\n')
    const hit = this.cache.get(cacheKey)
    if (hit && hit.expiresAtMs > this.deps.clock.nowMs()) return hit.authorized

    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), this.deps.timeoutMs)
    })
    try {
      const answer = await Promise.race([this.ask(req), deadline])
      if (answer === undefined) {
        this.deps.logger.warn(
          { managingApp: req.managingApp, space: req.config.uri },
          'managing app did not answer in time: denied',
        )
        return false
      }
      if (this.deps.cacheTtlMs > 0) {
        this.cache.set(cacheKey, {
          authorized: answer,
          expiresAtMs: this.deps.clock.nowMs() + this.deps.cacheTtlMs,
        })
        if (this.cache.size > 10_000) this.cache.delete(this.cache.keys().next().value!)
      }
      return answer
    } catch (err) {
      this.deps.logger.warn(
        { err, managingApp: req.managingApp, space: req.config.uri },
        'managing app check failed: denied',
      )
      return false
    } finally {
      clearTimeout(timer)
    }
  }

  private async ask(req: AccessQuestion): Promise<boolean> {
    const endpoint = await this.deps.resolver.resolveServiceEndpoint(req.managingApp)
    const key = await this.deps.authorityKey(req.config.authority)
    if (!key) throw new Error(`no #atproto key held for ${req.config.authority}`)
    const jwt = await this.deps.outbound.token({
      iss: req.config.authority,
      aud: req.managingApp,
      lxm: CHECK_USER_ACCESS,
      key,
    })
    const params = new URLSearchParams({
      space: req.config.uri,
      user: req.user,
      access: req.access,
    })
    if (req.clientId !== undefined) params.set('clientId', req.clientId)
    const res = await this.deps.fetcher.request(`${endpoint}/xrpc/${CHECK_USER_ACCESS}?${params}`, {
      headers: { authorization: `Bearer ${jwt}`, accept: 'application/json' },
      timeoutMs: this.deps.timeoutMs,
      maxBytes: 16 * 1024,
    })
    if (res.status !== 200) throw new Error(`managing app answered ${res.status}`)
    const body = JSON.parse(res.body.toString('utf8')) as { authorized?: unknown }
    if (typeof body?.authorized !== 'boolean')
      throw new Error('managing app answer has no boolean "authorized"')
    return body.authorized === true
  }
}

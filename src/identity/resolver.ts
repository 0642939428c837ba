import type { Clock } from '../clock.js'
import type { ParsedKey } from '../crypto/did-key.js'
import { isDid } from '../lexicon/formats.js'
import { FetchError, type SafeFetcher } from '../net/safe-fetch.js'
import {
  getServiceEndpoint,
  getVerificationKey,
  parseDidDocument,
  type DidDocument,
  type ServiceLookup,
} from './did-doc.js'

/**
 * DID resolution for did:plc (through the configured PLC directory) and did:web, with a bounded
 * cache. Every fetch goes through the SSRF-guarded fetcher (timeouts, size cap, no redirects).
 * `forceRefresh` bypasses the cache: verifiers use it once after a signature failure, so a key
 * rotation is picked up at the first request signed with the new key.
 */

export class DidResolutionError extends Error {
  override name = 'DidResolutionError'
  constructor(
    readonly did: string,
    readonly reason: 'unsupported' | 'not_found' | 'unreachable' | 'malformed',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}

export class ServiceResolutionError extends Error {
  override name = 'ServiceResolutionError'
}

export interface DidResolverOptions {
  plcUrl: string
  /**
   * The PLC directory client's fetcher (trusted for the directory's DID paths, see
   * plcDirectoryService), for did:plc documents. Default: the fetcher did:web documents use.
   */
  plcFetcher?: SafeFetcher
  cacheTtlMs: number
  cacheMaxEntries: number
  /** Largest DID document accepted, in bytes. */
  maxDocumentBytes?: number
}

interface Entry {
  doc: DidDocument
  expiresAtMs: number
}

/** The fragment a service identifier names, with the contract's fallbacks (§1.3, §4.7 item 4). */
const FALLBACKS: Record<string, string> = { '#atproto_space_host': '#atproto_pds' }

export class DidResolver {
  private readonly cache = new Map<string, Entry>()
  private readonly inflight = new Map<string, Promise<DidDocument>>()
  private readonly endpoints = new WeakMap<DidDocument, Map<string, ServiceLookup>>()

  constructor(
    private readonly fetcher: SafeFetcher,
    private readonly clock: Clock,
    private readonly opts: DidResolverOptions,
  ) {}

  /** The DID document of `did`; cached unless `forceRefresh`. Throws DidResolutionError. */
  async resolve(did: string, opts: { forceRefresh?: boolean } = {}): Promise<DidDocument> {
    if (!opts.forceRefresh) {
      const hit = this.cache.get(did)
      if (hit && hit.expiresAtMs > this.clock.nowMs()) {
        // Re-insert: Map order is the LRU order.
        this.cache.delete(did)
        this.cache.set(did, hit)
        return hit.doc
      }
    }
    const key = `${opts.forceRefresh ? 'fresh' : 'any'}:${did}`
    let pending = this.inflight.get(key)
    if (!pending) {
      pending = this.fetchDocument(did).finally(() => this.inflight.delete(key))
      this.inflight.set(key, pending)
    }
    return pending
  }

  /** Drops a cached document (for instance after the authority rotated it itself). */
  invalidate(did: string): void {
    this.cache.delete(did)
  }

  private async fetchDocument(did: string): Promise<DidDocument> {
    const url = this.documentUrl(did)
    // did:plc documents come from the directory, through its own client's fetcher; did:web
    // documents from wherever their DID says, through the fetcher that trusts nobody.
    const fetcher = did.startsWith('did:plc:')
      ? (this.opts.plcFetcher ?? this.fetcher)
      : this.fetcher
    let json: unknown
    try {
      json = await fetcher.getJson(url, { maxBytes: this.opts.maxDocumentBytes ?? 64 * 1024 })
    } catch (err) {
      if (
        err instanceof FetchError &&
        err.kind === 'http' &&
        (err.status === 404 || err.status === 410)
      ) {
        throw new DidResolutionError(did, 'not_found', `${did} was not found`, { cause: err })
      }
      throw new DidResolutionError(
        did,
        'unreachable',
        `could not resolve ${did}: ${(err as Error).message}`,
        {
          cause: err,
        },
      )
    }
    let doc: DidDocument
    try {
      doc = parseDidDocument(did, json)
    } catch (err) {
      throw new DidResolutionError(did, 'malformed', (err as Error).message, { cause: err })
    }
    this.cache.delete(did)
    this.cache.set(did, { doc, expiresAtMs: this.clock.nowMs() + this.opts.cacheTtlMs })
    while (this.cache.size > this.opts.cacheMaxEntries) {
      this.cache.delete(this.cache.keys().next().value!)
    }
    return doc
  }

  /** Where a DID's document lives. did:web follows the did:web spec; only localhost may be http. */
  documentUrl(did: string): string {
    if (!isDid(did)) throw new DidResolutionError(did, 'unsupported', `not a DID: ${did}`)
    if (did.startsWith('did:plc:')) {
      if (!/^did:plc:[a-z2-7]{24}$/.test(did))
        throw new DidResolutionError(did, 'malformed', `bad did:plc: ${did}`)
      return `${this.opts.plcUrl.replace(/\/$/, '')}/${did}`
    }
    if (did.startsWith('did:web:')) {
      const [hostEnc, ...path] = did.slice('did:web:'.length).split(':')
      const host = decodeURIComponent(hostEnc ?? '')
      if (!host || /[/?#@]/.test(host) || path.some((p) => !p || /[/?#%]/.test(p))) {
        throw new DidResolutionError(did, 'malformed', `bad did:web: ${did}`)
      }
      const scheme = host === 'localhost' || host.startsWith('localhost:') ? 'http' : 'https'
      const suffix = path.length ? `/${path.join('/')}/did.json` : '/.well-known/did.json'
      return `${scheme}://${host}${suffix}`
    }
    throw new DidResolutionError(did, 'unsupported', `unsupported DID method: ${did.split(':')[1]}`)
  }

  /** The key of verification method `kid` (`#atproto`, `#atproto_space`, …), or undefined. */
  async getKey(did: string, kid: string, forceRefresh = false): Promise<ParsedKey | undefined> {
    try {
      return getVerificationKey(await this.resolve(did, { forceRefresh }), kid)
    } catch (err) {
      if (err instanceof DidResolutionError) return undefined
      throw err
    }
  }

  /**
   * The endpoint a service identifier names: `did#fragment` is that service entry, a bare DID is its
   * `#atproto_pds`. An absent `#atproto_space_host` falls back to `#atproto_pds`; an entry that is
   * present but invalid does not. Throws ServiceResolutionError.
   */
  async resolveServiceEndpoint(serviceId: string): Promise<string> {
    const hash = serviceId.indexOf('#')
    const did = hash < 0 ? serviceId : serviceId.slice(0, hash)
    const fragment = hash < 0 ? '#atproto_pds' : serviceId.slice(hash)
    if (!isDid(did) || fragment.length < 2 || /[#\s]/.test(fragment.slice(1))) {
      throw new ServiceResolutionError(`not a service identifier: ${serviceId}`)
    }
    let doc: DidDocument
    try {
      doc = await this.resolve(did)
    } catch (err) {
      throw new ServiceResolutionError(`could not resolve ${did}`, { cause: err })
    }
    // Worked out once per document and fragment: a relay asks for the same syncer's endpoint on
    // every delivery. A refreshed document is a new object, so the answers go with it.
    let byFragment = this.endpoints.get(doc)
    if (!byFragment) this.endpoints.set(doc, (byFragment = new Map()))
    let found = byFragment.get(fragment)
    if (!found) {
      found = getServiceEndpoint(doc, fragment)
      const fallback = FALLBACKS[fragment]
      if (found.status === 'absent' && fallback) found = getServiceEndpoint(doc, fallback)
      byFragment.set(fragment, found)
    }
    if (found.status === 'found') return found.endpoint
    throw new ServiceResolutionError(
      found.status === 'absent'
        ? `${did} has no ${fragment} service`
        : `${did} ${fragment}: ${found.reason}`,
    )
  }
}

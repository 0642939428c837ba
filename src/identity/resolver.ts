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
import { DocumentLru, type CachedDocument } from './doc-cache.js'

// DID resolution (did:plc, did:web) through the SSRF-guarded fetcher, cached in two tiers: anyone can
// make us fetch a document by naming a DID in a token, so one fetched for a signature check waits in
// a small unverified tier until a signature by its key verifies (confirm); strangers churn only that.

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
  /** For did:plc documents: the directory client's fetcher (see plcDirectoryService). */
  plcFetcher?: SafeFetcher
  cacheTtlMs: number
  cacheMaxEntries: number
  cacheMaxBytes?: number
  maxDocumentBytes?: number
}

/** The unverified tier holds this share of the cache's entries and bytes. */
const UNVERIFIED_SHARE = 8

/** The fragment a service identifier names, with the contract's fallbacks (§1.3, §4.7 item 4). */
const FALLBACKS: Record<string, string> = { '#atproto_space_host': '#atproto_pds' }

export class DidResolver {
  readonly verified: DocumentLru
  readonly unverified: DocumentLru
  private readonly maxDocumentBytes: number
  private readonly inflight = new Map<string, Promise<CachedDocument>>()
  private readonly endpoints = new WeakMap<DidDocument, Map<string, ServiceLookup>>()

  constructor(
    private readonly fetcher: SafeFetcher,
    private readonly clock: Clock,
    private readonly opts: DidResolverOptions,
  ) {
    const maxBytes = opts.cacheMaxBytes ?? 8 * 1024 * 1024
    this.maxDocumentBytes = opts.maxDocumentBytes ?? 32 * 1024
    this.verified = new DocumentLru(opts.cacheMaxEntries, maxBytes)
    // Small, but never too small for one document of the largest size accepted.
    this.unverified = new DocumentLru(
      Math.ceil(opts.cacheMaxEntries / UNVERIFIED_SHARE),
      Math.max(Math.floor(maxBytes / UNVERIFIED_SHARE), this.maxDocumentBytes),
    )
  }

  /** `did`'s document for a caller acting on our own state (kept in the main tier); DidResolutionError. */
  resolve(did: string, opts: { forceRefresh?: boolean } = {}): Promise<DidDocument> {
    return this.lookup(did, opts.forceRefresh ?? false, true)
  }

  /** A signature by a key of `did`'s document verified: its document moves to the main tier. */
  confirm(did: string): void {
    const entry = this.unverified.delete(did)
    if (entry) this.verified.set(did, entry)
  }

  /** Drops a cached document (after we changed it). */
  invalidate(did: string): void {
    this.verified.delete(did)
    this.unverified.delete(did)
  }

  /** `vouched`: the caller stands for the DID (see resolve); otherwise a signature check asks. */
  private async lookup(did: string, forceRefresh: boolean, vouched: boolean): Promise<DidDocument> {
    if (!forceRefresh) {
      const hit = this.live(this.verified, did) ?? this.live(this.unverified, did)
      if (hit) {
        if (vouched) this.confirm(did)
        return hit.doc
      }
    }
    const key = `${forceRefresh ? 'fresh' : 'any'}:${did}`
    let pending = this.inflight.get(key)
    if (!pending) {
      pending = this.fetchDocument(did).finally(() => this.inflight.delete(key))
      this.inflight.set(key, pending)
    }
    const entry = await pending
    // A refresh of a document already in the main tier stays there, whoever asked.
    if (vouched || this.verified.has(did)) {
      this.unverified.delete(did)
      this.verified.set(did, entry)
    } else {
      this.unverified.set(did, entry)
    }
    return entry.doc
  }

  private live(tier: DocumentLru, did: string): CachedDocument | undefined {
    const hit = tier.get(did)
    if (hit && hit.expiresAtMs <= this.clock.nowMs()) {
      tier.delete(did)
      return undefined
    }
    return hit
  }

  private async fetchDocument(did: string): Promise<CachedDocument> {
    const url = this.documentUrl(did)
    const fetcher = did.startsWith('did:plc:')
      ? (this.opts.plcFetcher ?? this.fetcher)
      : this.fetcher
    let fetched: { json: unknown; bytes: number }
    try {
      // Refused while it arrives when oversized: real ones are about a kilobyte.
      fetched = await fetcher.getJsonSized(url, { maxBytes: this.maxDocumentBytes })
    } catch (err) {
      if (
        err instanceof FetchError &&
        err.kind === 'http' &&
        (err.status === 404 || err.status === 410)
      ) {
        throw new DidResolutionError(did, 'not_found', `${did} was not found`, { cause: err })
      }
      const message = `could not resolve ${did}: ${(err as Error).message}`
      throw new DidResolutionError(did, 'unreachable', message, { cause: err })
    }
    let doc: DidDocument
    try {
      doc = parseDidDocument(did, fetched.json)
    } catch (err) {
      throw new DidResolutionError(did, 'malformed', (err as Error).message, { cause: err })
    }
    return {
      doc,
      // As fetched: what is kept is no larger, and measuring it would cost a serialisation.
      bytes: fetched.bytes,
      expiresAtMs: this.clock.nowMs() + this.opts.cacheTtlMs,
    }
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

  /** The key of verification method `kid`, or undefined, for a signature check (unverified tier). */
  async getKey(did: string, kid: string, forceRefresh = false): Promise<ParsedKey | undefined> {
    try {
      return getVerificationKey(await this.lookup(did, forceRefresh, false), kid)
    } catch (err) {
      if (err instanceof DidResolutionError) return undefined
      throw err
    }
  }

  /** Endpoint of `did#fragment` (default #atproto_pds; an absent #atproto_space_host falls back to it). */
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
    // Once per document object and fragment: a relay asks on every delivery.
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

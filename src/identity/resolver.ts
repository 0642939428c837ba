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

/**
 * DID resolution for did:plc (through the configured PLC directory) and did:web, with a bounded
 * cache. Every fetch goes through the SSRF-guarded fetcher (timeouts, size cap, no redirects).
 * `forceRefresh` bypasses the cache: verifiers use it once after a signature failure, so a key
 * rotation is picked up at the first request signed with the new key.
 *
 * The cache is bounded by entries and by bytes, in two tiers. Anyone can make Gatehouse fetch a
 * document, by presenting a token "issued" by any DID: a document fetched for a signature check
 * (getKey) waits in a small unverified tier until a signature made with one of its keys verifies
 * (confirm), so strangers churn that tier only and cannot push out the documents of the peers
 * Gatehouse actually talks to. Documents asked for by callers acting on our own state (resolve:
 * authorities, syncers, managing apps, repo hosts) go to the main tier directly.
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
  /** Total size of the cached documents, in bytes (default 8 MiB). */
  cacheMaxBytes?: number
  /** Largest DID document accepted, in bytes, as fetched (default 32 KiB). */
  maxDocumentBytes?: number
}

/** The unverified tier holds this share of the cache's entries and bytes. */
const UNVERIFIED_SHARE = 8

/** The fragment a service identifier names, with the contract's fallbacks (§1.3, §4.7 item 4). */
const FALLBACKS: Record<string, string> = { '#atproto_space_host': '#atproto_pds' }

export class DidResolver {
  private readonly verified: DocumentLru
  private readonly unverified: DocumentLru
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

  /**
   * The DID document of `did`, for a caller acting on Gatehouse's own state (the DID is an
   * authority, a registered syncer, a managing app, a repo host): kept in the main cache. Cached
   * unless `forceRefresh`. Throws DidResolutionError.
   */
  resolve(did: string, opts: { forceRefresh?: boolean } = {}): Promise<DidDocument> {
    return this.lookup(did, opts.forceRefresh ?? false, true)
  }

  /**
   * A signature made with a key of `did`'s document has verified: the document, if it waits in
   * the unverified tier, moves to the main cache.
   */
  confirm(did: string): void {
    const entry = this.unverified.delete(did)
    if (entry) this.verified.set(did, entry)
  }

  /** Drops a cached document (for instance after the authority rotated it itself). */
  invalidate(did: string): void {
    this.verified.delete(did)
    this.unverified.delete(did)
  }

  /** What the cache holds, per tier. */
  cacheSize(): { verified: DocumentLru['size']; unverified: DocumentLru['size'] } {
    return { verified: this.verified.size, unverified: this.unverified.size }
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
    // Straight to the main tier when the caller stands for the DID, or when the DID is there
    // already (a refresh: its own host is the authority on its document, whoever asked). A
    // document fetched for a signature check that has not passed yet waits in the unverified tier,
    // so a stranger's documents cannot push out anyone else's.
    if (vouched || this.verified.has(did)) {
      this.unverified.delete(did)
      this.verified.set(did, entry)
    } else {
      this.unverified.set(did, entry)
    }
    return entry.doc
  }

  /** The unexpired entry of `did` in `tier`; an expired one is dropped. */
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
    // did:plc documents come from the directory, through its own client's fetcher; did:web
    // documents from wherever their DID says, through the fetcher that trusts nobody.
    const fetcher = did.startsWith('did:plc:')
      ? (this.opts.plcFetcher ?? this.fetcher)
      : this.fetcher
    let fetched: { json: unknown; bytes: number }
    try {
      // An oversized document is refused while it arrives (FetchError 'too_large'): real ones
      // are about a kilobyte, and every byte accepted may end up in the cache.
      fetched = await fetcher.getJsonSized(url, { maxBytes: this.maxDocumentBytes })
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
      doc = parseDidDocument(did, fetched.json)
    } catch (err) {
      throw new DidResolutionError(did, 'malformed', (err as Error).message, { cause: err })
    }
    return {
      doc,
      // Counted as fetched: what is kept (the validated document, unknown members dropped) is
      // no larger, and measuring it would cost a serialisation per fetch.
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

  /**
   * The key of verification method `kid` (`#atproto`, `#atproto_space`, …), or undefined, for a
   * signature check: the document is kept in the unverified tier until `confirm(did)`.
   */
  async getKey(did: string, kid: string, forceRefresh = false): Promise<ParsedKey | undefined> {
    try {
      return getVerificationKey(await this.lookup(did, forceRefresh, false), kid)
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

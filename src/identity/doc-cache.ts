import type { DidDocument } from './did-doc.js'

export interface CachedDocument {
  doc: DidDocument
  /** The document's size as fetched, in bytes (what is kept is no larger). */
  bytes: number
  expiresAtMs: number
}

/** An LRU map of DID documents bounded by entries and total bytes (Map order is LRU order). */
export class DocumentLru {
  private readonly entries = new Map<string, CachedDocument>()
  private total = 0

  constructor(
    private readonly maxEntries: number,
    private readonly maxBytes: number,
  ) {}

  get(did: string): CachedDocument | undefined {
    const hit = this.entries.get(did)
    if (hit) {
      this.entries.delete(did)
      this.entries.set(did, hit)
    }
    return hit
  }

  has(did: string): boolean {
    return this.entries.has(did)
  }

  set(did: string, entry: CachedDocument): void {
    this.delete(did)
    if (entry.bytes > this.maxBytes) return
    this.entries.set(did, entry)
    this.total += entry.bytes
    while (this.entries.size > this.maxEntries || this.total > this.maxBytes) {
      this.delete(this.entries.keys().next().value!)
    }
  }

  delete(did: string): CachedDocument | undefined {
    const hit = this.entries.get(did)
    if (hit) {
      this.entries.delete(did)
      this.total -= hit.bytes
    }
    return hit
  }

  get size(): { entries: number; bytes: number } {
    return { entries: this.entries.size, bytes: this.total }
  }
}

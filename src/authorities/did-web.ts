import { DID_KEY_PREFIX } from '../crypto/did-key.js'

/** did:web documents Gatehouse serves (its own, its did:web authorities'): contract §4.8 item 1. */
export function webDidDocument(opts: {
  did: string
  /** Verification methods by fragment (`atproto`, `atproto_space`), each as a did:key or Multikey. */
  keys: Record<string, string>
  services: Record<string, { type: string; endpoint: string }>
  alsoKnownAs?: string[]
}): object {
  return {
    '@context': ['https://www.w3.org/ns/did/v1', 'https://w3id.org/security/multikey/v1'],
    id: opts.did,
    ...(opts.alsoKnownAs?.length ? { alsoKnownAs: opts.alsoKnownAs } : {}),
    verificationMethod: Object.entries(opts.keys).map(([fragment, key]) => ({
      id: `${opts.did}#${fragment}`,
      type: 'Multikey',
      controller: opts.did,
      publicKeyMultibase: toMultikey(key),
    })),
    service: Object.entries(opts.services).map(([fragment, s]) => ({
      id: `#${fragment}`,
      type: s.type,
      serviceEndpoint: s.endpoint,
    })),
  }
}

function toMultikey(key: string): string {
  return key.startsWith(DID_KEY_PREFIX) ? key.slice(DID_KEY_PREFIX.length) : key
}

/** Where a did:web lives: `did:web:host` at `/.well-known/did.json`, `did:web:host:a:b` at `/a/b/did.json`. */
export function didWebLocation(did: string): { host: string; path: string } | undefined {
  const m = /^did:web:([a-z0-9.-]+(?:%3A\d+)?)((?::[A-Za-z0-9._-]+)*)$/.exec(did)
  if (!m) return undefined
  const segments = m[2] ? m[2].slice(1).split(':') : []
  return {
    host: m[1]!,
    path: segments.length ? `/${segments.join('/')}/did.json` : '/.well-known/did.json',
  }
}

/** The did:web a request for `path` on `host` (as the Host header gives it) asks for. */
export function didWebForRequest(host: string, path: string): string | undefined {
  const h = host.toLowerCase().replace(':', '%3A')
  if (path === '/.well-known/did.json') return `did:web:${h}`
  const m = /^\/((?:[A-Za-z0-9._-]+\/)*[A-Za-z0-9._-]+)\/did\.json$/.exec(path)
  return m ? `did:web:${h}:${m[1]!.split('/').join(':')}` : undefined
}

import { didDocumentValidator, type DidDocument } from '@atproto/did'
import {
  KeyFormatError,
  parseLegacyMultibase,
  parseMultikey,
  type ParsedKey,
} from '../crypto/did-key.js'

export type { DidDocument }

export class DidDocumentError extends Error {
  override name = 'DidDocumentError'
}

export function parseDidDocument(did: string, json: unknown): DidDocument {
  const res = didDocumentValidator.safeParse(json)
  if (!res.success) throw new DidDocumentError(`DID document of ${did} is malformed`)
  if (res.data.id !== did)
    throw new DidDocumentError(`DID document id is ${res.data.id}, expected ${did}`)
  return res.data as DidDocument
}

/** Matches an entry id against a fragment: relative (`#atproto`) or absolute (`did:…#atproto`). */
function idMatches(doc: DidDocument, id: string, fragment: string): boolean {
  return id === fragment || id === `${doc.id}${fragment}`
}

/** Key of method `fragment`: Multikey, or the legacy EcdsaSecp256{k,r}1VerificationKey2019 PLC serves. */
export function getVerificationKey(doc: DidDocument, fragment: string): ParsedKey | undefined {
  let memo = parsedKeys.get(doc)
  if (!memo) parsedKeys.set(doc, (memo = new Map()))
  if (memo.has(fragment)) return memo.get(fragment)
  const key = readVerificationKey(doc, fragment)
  memo.set(fragment, key)
  return key
}

const parsedKeys = new WeakMap<DidDocument, Map<string, ParsedKey | undefined>>()

function readVerificationKey(doc: DidDocument, fragment: string): ParsedKey | undefined {
  for (const vm of doc.verificationMethod ?? []) {
    if (typeof vm === 'string' || !idMatches(doc, vm.id, fragment)) continue
    const multibase = (vm as { publicKeyMultibase?: unknown }).publicKeyMultibase
    if (typeof multibase !== 'string') return undefined
    try {
      switch (vm.type) {
        case 'Multikey':
          return parseMultikey(multibase)
        case 'EcdsaSecp256k1VerificationKey2019':
          return parseLegacyMultibase('secp256k1', multibase)
        case 'EcdsaSecp256r1VerificationKey2019':
          return parseLegacyMultibase('p256', multibase)
        default:
          return undefined
      }
    } catch (err) {
      if (err instanceof KeyFormatError) return undefined
      throw err
    }
  }
  return undefined
}

export type ServiceLookup =
  | { status: 'found'; endpoint: string }
  | { status: 'absent' }
  | { status: 'invalid'; reason: string }

/** The endpoint of service `fragment`; "invalid" is kept apart from "absent" (only absent falls back). */
export function getServiceEndpoint(doc: DidDocument, fragment: string): ServiceLookup {
  const entry = (doc.service ?? []).find((s) => idMatches(doc, s.id, fragment))
  if (!entry) return { status: 'absent' }
  const endpoint = entry.serviceEndpoint
  if (typeof endpoint !== 'string')
    return { status: 'invalid', reason: 'serviceEndpoint is not a string' }
  try {
    const u = new URL(endpoint)
    if (u.protocol !== 'https:' && u.protocol !== 'http:') {
      return { status: 'invalid', reason: 'serviceEndpoint is not http(s)' }
    }
    if (u.search || u.hash || u.username || u.password) {
      return { status: 'invalid', reason: 'serviceEndpoint must be a plain origin or path' }
    }
    return { status: 'found', endpoint: endpoint.replace(/\/+$/, '') }
  } catch {
    return { status: 'invalid', reason: 'serviceEndpoint is not a URL' }
  }
}

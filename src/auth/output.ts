import type { SpaceRef } from '../lexicon/formats.js'

/** How the requester proved possession of the key a credential is (or will be) bound to. */
export type KeyBinding = { kind: 'signature'; keyDid: string } | { kind: 'dpop'; jkt: string }

/** What a verified space token (delegation token or credential) says. */
export interface SpaceTokenFacts {
  /** Delegation: the user it speaks for. Credential: the authority that issued it. */
  iss: string
  /** The space in `sub`, as a URI and parsed. */
  spaceUri: string
  space: SpaceRef
  jti: string
  exp: number
  /** Delegation: the key the new credential must be bound to. Credential: the key it is bound to. */
  binding: KeyBinding
}

export interface DelegationAuth extends SpaceTokenFacts {
  type: 'delegation_token'
}

export interface CredentialAuth extends SpaceTokenFacts {
  type: 'space_credential'
  /** The signed `Atproto-Space-Audience` (generation C); undefined for DPoP-bound credentials. */
  audience: string | undefined
}

export interface ServiceAuth {
  type: 'service_auth'
  /** The calling service (a DID, possibly with a #fragment). */
  iss: string
  aud: string
  lxm: string
  jti: string | undefined
}

/** No Authorization header at all (for methods some spaces open to everyone). */
export interface AnonymousAuth {
  type: 'anonymous'
}

/** What auth functions and handlers see of a request: never the Fastify request itself. */
export interface RequestView {
  id: string
  method: string
  /** Path and query as received. */
  url: string
  headers: Readonly<Record<string, string | string[] | undefined>>
  /** Header names and values as received, alternating; repeated headers appear repeatedly. */
  rawHeaders: readonly string[]
  ip: string
}

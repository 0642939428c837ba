import type { SpaceRef } from '../lexicon/formats.js'

/** What each kind of request authentication establishes. Handlers switch on `type`. */

/** How the requester proved possession of the key a credential is (or will be) bound to. */
export type KeyBinding = { kind: 'signature'; keyDid: string } | { kind: 'dpop'; jkt: string }

export interface DelegationAuth {
  type: 'delegation_token'
  /** The user the delegation token speaks for. */
  iss: string
  /** The space in `sub`, as a URI and parsed. */
  spaceUri: string
  space: SpaceRef
  jti: string
  exp: number
  /** The key the new credential must be bound to. */
  binding: KeyBinding
}

export interface CredentialAuth {
  type: 'space_credential'
  /** The space authority that issued the credential. */
  iss: string
  spaceUri: string
  space: SpaceRef
  jti: string
  exp: number
  binding: KeyBinding
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

export type AuthOutput = DelegationAuth | CredentialAuth | ServiceAuth

/** The decision layer's vocabulary. Pure data; storage and wire forms are converted in codec.ts. */

export type UserPolicy =
  | { kind: 'public' }
  | { kind: 'member-list' }
  /** Ask this service (a DID with optional #fragment) through checkUserAccess. */
  | { kind: 'managing-app'; managingApp: string }

export type AppAccess =
  | { kind: 'open' }
  | { kind: 'allowList'; allowed: string[] }
  /** Gatehouse's extension: every app except these client ids (an attestation is required). */
  | { kind: 'denyList'; denied: string[] }

export type Access = 'read' | 'write'

export interface SpacePolicy {
  readPolicy: UserPolicy
  writePolicy: UserPolicy
  appAccess: AppAccess
}

/** Who may read a space's member list (managers and the managing app always may). */
export type RosterVisibility = 'owner' | 'members' | 'count' | 'public'
export const ROSTER_VISIBILITIES: readonly RosterVisibility[] = [
  'owner',
  'members',
  'count',
  'public',
]

export interface SpaceConfig extends SpacePolicy {
  uri: string
  authority: string
  credentialTtlSec: number
  /** Lifetime of DPoP-bound (generation A) credentials: never longer than `credentialTtlSec`. */
  dpopCredentialTtlSec: number
  rosterVisibility: RosterVisibility
  /** When this instance of the space was created: re-creating a deleted space starts a new one. */
  createdAt: Date
}

/** What a managing app is asked: may `user` have `access` to the space (through `clientId`)? */
export interface AccessQuestion {
  config: SpaceConfig
  managingApp: string
  user: string
  access: Access
  clientId?: string
}

/** The shapes of the /api/v1 answers the dashboard reads (see /api/v1/openapi.json). */

export type Role = 'owner' | 'admin' | 'moderator'

export interface Me {
  did: string
  via: 'session' | 'token'
  authorities: { did: string; role: Role }[]
}

export interface AuthorityRow {
  did: string
  role: Role
  status: string
  handle: string | null
}

export interface Authority {
  did: string
  status: string
  origin: string
  handle?: string
  ownerRotationKey?: string
  pdsService: boolean
  createdAt: string
  updatedAt: string
  keys: {
    id: string
    purpose: string
    status: string
    publicKey: string
    createdAt: string
    retiredAt?: string
  }[]
}

export interface Space {
  uri: string
  readPolicy: { $type: string }
  writePolicy: { $type: string }
  appAccess: { $type: string; clients?: string[] }
  credentialTtlSec: number
  dpopCredentialTtlSec: number
  rosterVisibility: 'owner' | 'members' | 'count' | 'public'
  members: number
  createdAt: string
}

export interface Member {
  did: string
  read: boolean
  write: boolean
}

export interface Manager {
  did: string
  role: Role
  createdAt: string
}

export interface Token {
  id: string
  name: string
  role: Role
  space: string | null
  createdBy: string
  createdAt: string
  expiresAt: string | null
  revokedAt: string | null
  lastUsedAt: string | null
  token?: string
}

export interface Invite {
  id: string
  read: boolean
  write: boolean
  maxUses: number | null
  uses: number
  expiresAt: string
  createdBy: string
  createdAt: string
  revokedAt: string | null
  usedBy: { did: string; at: string }[]
  code?: string
  link?: string
}

export interface JoinRequest {
  id: string
  did: string
  status: 'pending' | 'approved' | 'denied'
  read: boolean
  write: boolean
  message?: string
  reason?: string
  createdAt: string
  decidedAt?: string
  decidedBy?: string
}

export interface Credential {
  jti: string
  user: string
  clientId: string | null
  issuedAt: string
  expiresAt: string
  revokedAt: string | null
}

export interface Registration {
  service: string
  endpoint: string
  expiresAt: string
  cursor: string | null
  attempts: number
  lastError: string | null
}

export interface DeadLetter {
  id: string
  service: string
  spaceRev: string
  kind: string
  attempts: number
  lastError?: string
  createdAt: string
}

export interface AuditEntry {
  seq: number
  at: string
  actor: string
  door: string
  action: string
  space: string | null
  subject: string | null
  outcome: string
  reason: string | null
  hash: string
}

import type { AppAccess, SpacePolicy, UserPolicy } from './types.js'

/** Lexicon ↔ domain ↔ columns; unsupported variants are refused when written, never stored. */

export const DEFS = 'com.atproto.simplespace.defs'
export const GATEHOUSE_DEFS = 'dev.gatehouse.simplespace.defs'

export class PolicyCodecError extends Error {
  override name = 'PolicyCodecError'
  constructor(
    readonly error: 'UnsupportedPolicy' | 'UnsupportedAppAccess',
    message: string,
  ) {
    super(message)
  }
}

type Union = { $type?: unknown } & Record<string, unknown>

const isServiceId = (s: unknown): s is string =>
  typeof s === 'string' && /^did:[a-z]+:[^\s#]+(#[^\s#]+)?$/.test(s)

export function userPolicyFromLex(value: unknown): UserPolicy {
  const v = (value ?? {}) as Union
  switch (v.$type) {
    case `${DEFS}#publicPolicy`:
      return { kind: 'public' }
    case `${DEFS}#memberListPolicy`:
      return { kind: 'member-list' }
    case `${DEFS}#managingAppPolicy`:
      if (!isServiceId(v.managingApp)) {
        throw new PolicyCodecError(
          'UnsupportedPolicy',
          'managingApp must be a service identifier (did:…[#fragment])',
        )
      }
      return { kind: 'managing-app', managingApp: v.managingApp }
    default:
      throw new PolicyCodecError(
        'UnsupportedPolicy',
        `unsupported policy ${JSON.stringify(v.$type ?? null)}`,
      )
  }
}

export type LexUnion = { $type: string } & Record<string, unknown>

export function userPolicyToLex(p: UserPolicy): LexUnion {
  switch (p.kind) {
    case 'public':
      return { $type: `${DEFS}#publicPolicy` }
    case 'member-list':
      return { $type: `${DEFS}#memberListPolicy` }
    case 'managing-app':
      return { $type: `${DEFS}#managingAppPolicy`, managingApp: p.managingApp }
  }
}

const MAX_CLIENTS = 1000
const isClientId = (s: unknown): s is string =>
  typeof s === 'string' && s.length > 0 && s.length <= 2048

function clientList(value: unknown, what: string): string[] {
  if (!Array.isArray(value) || value.length > MAX_CLIENTS || !value.every(isClientId)) {
    throw new PolicyCodecError(
      'UnsupportedAppAccess',
      `${what} must be a list of at most ${MAX_CLIENTS} client ids`,
    )
  }
  return [...new Set(value)]
}

export function appAccessFromLex(value: unknown): AppAccess {
  const v = (value ?? {}) as Union
  switch (v.$type) {
    case `${DEFS}#open`:
      return { kind: 'open' }
    case `${DEFS}#allowList`:
      return { kind: 'allowList', allowed: clientList(v.allowed, 'allowed') }
    case `${GATEHOUSE_DEFS}#denyList`:
      return { kind: 'denyList', denied: clientList(v.denied, 'denied') }
    default:
      throw new PolicyCodecError(
        'UnsupportedAppAccess',
        `unsupported app access ${JSON.stringify(v.$type ?? null)}`,
      )
  }
}

export function appAccessToLex(a: AppAccess): LexUnion {
  switch (a.kind) {
    case 'open':
      return { $type: `${DEFS}#open` }
    case 'allowList':
      return { $type: `${DEFS}#allowList`, allowed: a.allowed }
    case 'denyList':
      return { $type: `${GATEHOUSE_DEFS}#denyList`, denied: a.denied }
  }
}

/** Database columns of a space's policy. */
export interface PolicyColumns {
  readPolicy: string
  readManagingApp: string | null
  writePolicy: string
  writeManagingApp: string | null
  appAccess: string
}

export function policyToColumns(p: SpacePolicy): { columns: PolicyColumns; clientIds: string[] } {
  const app = p.appAccess
  return {
    columns: {
      readPolicy: p.readPolicy.kind,
      readManagingApp: p.readPolicy.kind === 'managing-app' ? p.readPolicy.managingApp : null,
      writePolicy: p.writePolicy.kind,
      writeManagingApp: p.writePolicy.kind === 'managing-app' ? p.writePolicy.managingApp : null,
      appAccess: app.kind,
    },
    clientIds: app.kind === 'allowList' ? app.allowed : app.kind === 'denyList' ? app.denied : [],
  }
}

function userPolicyFromColumns(kind: string, managingApp: string | null): UserPolicy {
  if (kind === 'public' || kind === 'member-list') return { kind }
  if (kind === 'managing-app' && managingApp) return { kind, managingApp }
  throw new PolicyCodecError('UnsupportedPolicy', `stored policy "${kind}" is not understood`)
}

export function policyFromColumns(c: PolicyColumns, clientIds: string[]): SpacePolicy {
  const appAccess: AppAccess =
    c.appAccess === 'open'
      ? { kind: 'open' }
      : c.appAccess === 'allowList'
        ? { kind: 'allowList', allowed: clientIds }
        : c.appAccess === 'denyList'
          ? { kind: 'denyList', denied: clientIds }
          : (() => {
              throw new PolicyCodecError(
                'UnsupportedAppAccess',
                `stored app access "${c.appAccess}" is not understood`,
              )
            })()
  return {
    readPolicy: userPolicyFromColumns(c.readPolicy, c.readManagingApp),
    writePolicy: userPolicyFromColumns(c.writePolicy, c.writeManagingApp),
    appAccess,
  }
}

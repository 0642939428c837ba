import type { Access, AccessQuestion, AppAccess, SpaceConfig, UserPolicy } from './types.js'

/** May this user, through this app, read (a credential) or write (notify)? Pure. */

export type Refusal = 'AppNotAuthorized' | 'UserNotAuthorized'

export class AuthorizationError extends Error {
  override name = 'AuthorizationError'
  constructor(readonly refusal: Refusal) {
    super(
      refusal === 'AppNotAuthorized'
        ? 'Application not authorized for this space'
        : 'User not authorized for this space',
    )
  }
}

export interface AuthorizeDeps {
  /** The member row's flag for `access`, or false when there is no row. */
  isMember(space: string, did: string, access: Access): Promise<boolean>
  /** Asks the managing app; resolves false on any failure (fail closed). */
  checkUserAccess(req: AccessQuestion): Promise<boolean>
}

/** The app perimeter; a denied app could omit its attestation, so deny-lists require one. */
export function isAppAllowed(appAccess: AppAccess, clientId: string | undefined): boolean {
  switch (appAccess.kind) {
    case 'open':
      return true
    case 'allowList':
      return clientId !== undefined && appAccess.allowed.includes(clientId)
    case 'denyList':
      return clientId !== undefined && !appAccess.denied.includes(clientId)
  }
}

/** The user perimeter for `access`. The authority itself is always authorized: it cannot lock itself out. */
export async function authorizeUser(
  config: SpaceConfig,
  user: string,
  access: Access,
  deps: AuthorizeDeps,
  clientId?: string,
): Promise<boolean> {
  if (user === config.authority) return true
  const policy: UserPolicy = access === 'read' ? config.readPolicy : config.writePolicy
  switch (policy.kind) {
    case 'public':
      return true
    case 'member-list':
      return deps.isMember(config.uri, user, access)
    case 'managing-app':
      return deps.checkUserAccess({
        config,
        managingApp: policy.managingApp,
        user,
        access,
        clientId,
      })
  }
}

/** App perimeter first (a refused app is never shown to a managing app), then the user. */
export async function authorizeCredential(
  req: { config: SpaceConfig; user: string; clientId: string | undefined },
  deps: AuthorizeDeps,
): Promise<void> {
  if (!isAppAllowed(req.config.appAccess, req.clientId))
    throw new AuthorizationError('AppNotAuthorized')
  if (!(await authorizeUser(req.config, req.user, 'read', deps, req.clientId))) {
    throw new AuthorizationError('UserNotAuthorized')
  }
}

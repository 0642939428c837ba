import { spaceAuthority } from '../lexicon/formats.js'
import { activeConfig, lookupHostedSpace } from '../spaces/hosted.js'
import { assertAddressedToHost } from './audience.js'
import { assertCredentialFor } from './credential-scope.js'
import type { AppContext } from '../context.js'
import { hasRole, type ManagerRole } from '../authorities/managers.js'
import { AuthRequiredError, InvalidRequestError } from '../errors.js'
import type { SpaceConfig } from '../policy/types.js'
import type { AnonymousAuth, CredentialAuth, ServiceAuth } from './output.js'

/**
 * Management calls (simplespace.*, dev.gatehouse.*) arrive with service auth from a manager's DID.
 * The token must be addressed to this host — Gatehouse's own DID, or the authority it answers for
 * (`assertAddressedToHost`, else 403) — and its issuer must hold at least `needed` for the space's
 * authority. Anyone else gets the lexicon's NotSpaceOwner (400), the error the reference gives a
 * non-owner.
 */
export async function assertManager(
  ctx: AppContext,
  auth: ServiceAuth,
  authority: string,
  needed: ManagerRole,
): Promise<ManagerRole> {
  assertAddressedToHost(auth, ctx.cfg.service.did, authority)
  return assertRole(ctx, auth, authority, needed)
}

/** The issuer's role for `authority`, when it is at least `needed`; NotSpaceOwner otherwise. */
async function assertRole(
  ctx: AppContext,
  auth: ServiceAuth,
  authority: string,
  needed: ManagerRole,
): Promise<ManagerRole> {
  const role = await ctx.managers.roleOf(authority, auth.iss)
  if (!hasRole(role, needed)) {
    throw new InvalidRequestError(
      `${auth.iss} may not manage spaces of ${authority}`,
      'NotSpaceOwner',
    )
  }
  return role!
}

/**
 * Authorizes a management call on an existing space: a manager with at least `needed`, or — when
 * `managingApp` is allowed — the service the space names as its managing app (read or write), for
 * the member operations it is delegated. Returns the active config; SpaceNotFound when there is none.
 */
export async function authorizeSpaceManagement(
  ctx: AppContext,
  auth: ServiceAuth,
  spaceUri: string,
  needed: ManagerRole,
  opts: { managingApp?: boolean } = {},
): Promise<SpaceConfig> {
  const authority = spaceAuthority(spaceUri)
  // The audience first, for every caller: the managing app's tokens are bound to us as a
  // manager's are, and a misaddressed token learns nothing about the space.
  assertAddressedToHost(auth, ctx.cfg.service.did, authority)
  const found = await lookupHostedSpace(ctx, spaceUri)
  if (opts.managingApp && found.state === 'active') {
    const caller = auth.iss.split('#')[0]
    const apps = [found.config.readPolicy, found.config.writePolicy].flatMap((p) =>
      p.kind === 'managing-app' ? [p.managingApp.split('#')[0]] : [],
    )
    if (apps.includes(caller)) return found.config
  }
  await assertRole(ctx, auth, authority, needed)
  return activeConfig(found)
}

/**
 * Who may read a space's member list (listMembers, listMemberOps) or only its size
 * (getMemberState with `what: 'count'`), by the space's roster visibility:
 * - managers and the managing app: always, everything;
 * - holders of a credential for the space: `members` and `public` (everything), `count` (the count);
 * - anyone: `public` (everything), `count` (the count).
 * Anonymous callers are refused before the space is looked up, so they cannot probe which
 * non-public spaces exist. Returns the config and whether the caller sees more than the count.
 */
export async function authorizeRosterRead(
  ctx: AppContext,
  auth: ServiceAuth | CredentialAuth | AnonymousAuth,
  spaceUri: string,
  what: 'roster' | 'count',
): Promise<{ config: SpaceConfig; full: boolean }> {
  if (auth.type === 'service_auth') {
    try {
      return {
        config: await authorizeSpaceManagement(ctx, auth, spaceUri, 'moderator', {
          managingApp: true,
        }),
        full: true,
      }
    } catch (err) {
      // Not a manager: such a caller sees what anyone sees.
      if (!(err instanceof InvalidRequestError && err.error === 'NotSpaceOwner')) throw err
    }
  }
  if (auth.type === 'space_credential') assertCredentialFor(auth, spaceUri)
  const found = await lookupHostedSpace(ctx, spaceUri)
  const visibility = found.state === 'active' ? found.config.rosterVisibility : 'owner'
  const full =
    visibility === 'public' || (visibility === 'members' && auth.type === 'space_credential')
  const countOnly = !full && visibility === 'count' && what === 'count'
  if (!full && !countOnly) {
    if (auth.type === 'anonymous')
      throw new AuthRequiredError('This member list is not public', 'AuthenticationRequired')
    throw new InvalidRequestError(
      'This member list is visible to its managers only',
      'NotSpaceOwner',
    )
  }
  return { config: activeConfig(found), full }
}

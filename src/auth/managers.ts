import type { Actor } from '../audit/audit-log.js'
import { spaceAuthority } from '../lexicon/formats.js'
import { activeConfig, lookupHostedSpace } from '../spaces/hosted.js'
import { assertAddressedToHost } from './audience.js'
import { assertCredentialFor } from './credential-scope.js'
import type { AppContext } from '../context.js'
import { can, type Capability, type ManagerRole } from '../authorities/managers.js'
import { AuthRequiredError, InvalidRequestError } from '../errors.js'
import type { SpaceConfig } from '../policy/types.js'
import type { AnonymousAuth, CredentialAuth, ServiceAuth } from './output.js'

/** Addressed to this host (else 403), from a manager whose role has `needed` (else 400 NotSpaceOwner). */
export async function assertManager(
  ctx: AppContext,
  auth: ServiceAuth,
  authority: string,
  needed: Capability,
): Promise<ManagerRole> {
  assertAddressedToHost(auth, ctx.cfg.service.did, authority)
  return assertRole(ctx, auth, authority, needed)
}

/** The audit log's name for a service-auth caller: its issuer, through the XRPC door. */
export const xrpcActor = (auth: ServiceAuth): Actor => ({ did: auth.iss, door: 'xrpc' })

/**
 * The issuer's role for `authority`, when it has `needed`; NotSpaceOwner otherwise, recorded in the
 * authority's audit log unless `quiet` (a caller that falls back to what anyone may see).
 */
async function assertRole(
  ctx: AppContext,
  auth: ServiceAuth,
  authority: string,
  needed: Capability,
  where: { space?: string; quiet?: boolean } = {},
): Promise<ManagerRole> {
  const role = await ctx.managers.roleOf(authority, auth.iss)
  if (!can(role, needed)) {
    const message = `${auth.iss} may not manage spaces of ${authority}`
    if (!where.quiet)
      await ctx.audit.recordRefusal({
        authority,
        actor: xrpcActor(auth),
        action: 'refused',
        space: where.space,
        reason: `${needed}: ${message}`,
      })
    throw new InvalidRequestError(message, 'NotSpaceOwner')
  }
  return role!
}

/** A manager with `needed` or (`managingApp`) the space's managing app; returns the active config. */
export async function authorizeSpaceManagement(
  ctx: AppContext,
  auth: ServiceAuth,
  spaceUri: string,
  needed: Capability,
  opts: { managingApp?: boolean; quiet?: boolean } = {},
): Promise<SpaceConfig> {
  const authority = spaceAuthority(spaceUri)
  // The audience first, for every caller: a misaddressed token learns nothing about the space.
  assertAddressedToHost(auth, ctx.cfg.service.did, authority)
  const found = await lookupHostedSpace(ctx, spaceUri)
  if (opts.managingApp && found.state === 'active') {
    const caller = auth.iss.split('#')[0]
    const apps = [found.config.readPolicy, found.config.writePolicy].flatMap((p) =>
      p.kind === 'managing-app' ? [p.managingApp.split('#')[0]] : [],
    )
    if (apps.includes(caller)) return found.config
  }
  await assertRole(ctx, auth, authority, needed, { space: spaceUri, quiet: opts.quiet })
  return activeConfig(found)
}

/**
 * Who may read a member list (`full`) or only its size, by roster visibility: managers and the
 * managing app always; credential holders under `members`/`public`; anyone under `public`; the count
 * under `count`. Refused callers cannot tell which non-public spaces exist.
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
        config: await authorizeSpaceManagement(ctx, auth, spaceUri, 'read', {
          managingApp: true,
          quiet: true,
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

import type { AppContext } from '../context.js'
import { hasRole, type ManagerRole } from '../authorities/managers.js'
import { ForbiddenError, InvalidRequestError } from '../errors.js'
import type { ServiceAuth } from './output.js'

/**
 * Management calls (simplespace.*, dev.gatehouse.*) arrive with service auth from a manager's DID.
 * The token must be addressed to this host — Gatehouse's own DID, or the authority it answers for —
 * and its issuer must hold at least `needed` for the space's authority. Anyone else gets the
 * lexicon's NotSpaceOwner (400), the error the reference gives a non-owner.
 */
export async function assertManager(
  ctx: AppContext,
  auth: ServiceAuth,
  authority: string,
  needed: ManagerRole,
): Promise<ManagerRole> {
  const service = ctx.cfg.service.did
  const audiences = [
    service,
    `${service}#atproto_space_host`,
    authority,
    `${authority}#atproto_space_host`,
  ]
  if (!audiences.includes(auth.aud))
    throw new ForbiddenError('service auth is not addressed to this host')
  const role = await ctx.managers.roleOf(authority, auth.iss)
  if (!hasRole(role, needed)) {
    throw new InvalidRequestError(
      `${auth.iss} may not manage spaces of ${authority}`,
      'NotSpaceOwner',
    )
  }
  return role!
}

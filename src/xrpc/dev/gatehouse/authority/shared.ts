import { assertAddressedToHost } from '../../../../auth/audience.js'
import { assertManager } from '../../../../auth/managers.js'
import type { ServiceAuth } from '../../../../auth/output.js'
import type { Capability } from '../../../../authorities/managers.js'
import { AuthorityLifecycleError, type AuthorityView } from '../../../../authorities/lifecycle.js'
import type { AppContext } from '../../../../context.js'
import { ForbiddenError, InvalidRequestError, XrpcError } from '../../../../errors.js'

/** The wire form of an authority: dates as ISO strings, absent values left out, never a secret. */
export function authorityOut(view: AuthorityView) {
  return {
    did: view.did,
    status: view.status,
    origin: view.origin,
    ...(view.handle ? { handle: view.handle } : {}),
    ...(view.ownerRotationKey ? { ownerRotationKey: view.ownerRotationKey } : {}),
    pdsService: view.pdsService,
    createdAt: view.createdAt.toISOString(),
    updatedAt: view.updatedAt.toISOString(),
    keys: view.keys.map((k) => ({
      id: k.id,
      purpose: k.purpose,
      status: k.status,
      publicKey: k.publicKey,
      createdAt: k.createdAt.toISOString(),
      ...(k.retiredAt ? { retiredAt: k.retiredAt.toISOString() } : {}),
    })),
  }
}

/** A lifecycle step, its refusals as the lexicon's errors: PlcUnavailable 503, the rest 400. */
export async function lifecycleStep<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    if (!(err instanceof AuthorityLifecycleError)) throw err
    if (err.code === 'PlcUnavailable')
      throw new XrpcError(503, 'PlcUnavailable', err.message, { cause: err })
    throw new InvalidRequestError(err.message, err.code, { cause: err })
  }
}

/** Changing an existing authority: service auth from one of its managers whose role has `needed`. */
export async function authorizeAuthority(
  ctx: AppContext,
  auth: ServiceAuth,
  did: string,
  needed: Capability = 'authority',
): Promise<void> {
  if (!(await ctx.authorities.record(did)))
    throw new InvalidRequestError(`${did} is not held here`, 'AuthorityNotFound')
  await assertManager(ctx, auth, did, needed)
}

/** Creating or adopting: addressed to Gatehouse itself, from one of GATEHOUSE_AUTHORITY_CREATORS. */
export function authorizeCreator(ctx: AppContext, auth: ServiceAuth): string {
  assertAddressedToHost(auth, ctx.cfg.service.did)
  const creators = ctx.cfg.authorities.creators
  if (creators !== '*' && !creators.includes(auth.iss))
    throw new ForbiddenError(`${auth.iss} may not create authorities on this host`)
  return auth.iss
}

import { spaceAuthority } from '../lexicon/formats.js'
import type { AuthorityService } from '../authorities/authority-service.js'
import { InvalidRequestError } from '../errors.js'
import type { SpaceConfig } from '../policy/types.js'
import type { SpaceService } from './space-service.js'

type HostedDeps = { authorities: AuthorityService; spaces: SpaceService }

/**
 * "Is this host the authority, and is the space active?" (contract §4.2): the active config of a space
 * whose authority Gatehouse answers for, or 400 SpaceNotFound — the same answer for an unknown
 * authority, an unknown space and a deleted one.
 */
export async function getHostedSpace(deps: HostedDeps, uri: string): Promise<SpaceConfig> {
  const found = await lookupHostedSpace(deps, uri)
  if (found.state !== 'active') throw new InvalidRequestError('Space not found', 'SpaceNotFound')
  return found.config
}

/** The space's state; `absent` when Gatehouse does not answer for its authority. */
export async function lookupHostedSpace(
  deps: HostedDeps,
  uri: string,
): ReturnType<SpaceService['lookup']> {
  const authority = spaceAuthority(uri)
  return (await deps.authorities.isActive(authority))
    ? deps.spaces.lookup(uri)
    : { state: 'absent' }
}

import { spaceAuthority } from '../lexicon/formats.js'
import type { AuthorityService } from '../authorities/authority-service.js'
import { InvalidRequestError } from '../errors.js'
import type { SpaceConfig } from '../policy/types.js'
import type { SpaceService } from './space-service.js'

type HostedDeps = { authorities: AuthorityService; spaces: SpaceService }

export type Hosted = Awaited<ReturnType<SpaceService['lookup']>> | { state: 'foreign' }

/**
 * "Is this host the authority, and is the space active?" (contract §4.2): `foreign` when Gatehouse
 * does not answer for the space's authority (the space is then not read), else the space's state.
 */
export async function lookupHostedSpace(deps: HostedDeps, uri: string): Promise<Hosted> {
  return (await deps.authorities.isActive(spaceAuthority(uri)))
    ? deps.spaces.lookup(uri)
    : { state: 'foreign' }
}

/** The active config, or 400 SpaceNotFound: one answer for a foreign authority, an unknown space and a deleted one. */
export function activeConfig(found: Hosted): SpaceConfig {
  if (found.state !== 'active') throw new InvalidRequestError('Space not found', 'SpaceNotFound')
  return found.config
}

export async function getHostedSpace(deps: HostedDeps, uri: string): Promise<SpaceConfig> {
  return activeConfig(await lookupHostedSpace(deps, uri))
}

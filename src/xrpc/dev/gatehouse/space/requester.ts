import { ForbiddenError } from '../../../../errors.js'
import type { ServiceAuth } from '../../../../auth/output.js'

/**
 * The user a service-auth call speaks for: its issuer, which must be a bare DID. A service of a
 * DID (`did#fragment`) signs for itself, not as the user, so it may not join or accept for them.
 */
export function requesterOf(auth: ServiceAuth): string {
  if (auth.iss.includes('#'))
    throw new ForbiddenError('This call must be signed by the user themselves, not a service')
  return auth.iss
}

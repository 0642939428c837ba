import { AuthRequiredError, InvalidRequestError } from '../errors.js'
import type { CredentialAuth } from './output.js'

/**
 * The handler-side checks of a presented credential, in the contract's order (§3.3): first the
 * credential must be for the requested space (400 InvalidCredential), then — generation C — the
 * signed Atproto-Space-Audience must be the bare authority DID (401 BadSpaceAudience). Generation A
 * (DPoP) requests carry no audience.
 */
export function assertCredentialFor(auth: CredentialAuth, spaceUri: string): void {
  if (auth.spaceUri !== spaceUri) {
    throw new InvalidRequestError('Credential is not scoped to this space', 'InvalidCredential')
  }
  if (auth.binding.kind === 'signature' && auth.audience !== auth.space.authority) {
    throw new AuthRequiredError(
      'Atproto-Space-Audience must be the space authority DID',
      'BadSpaceAudience',
    )
  }
}

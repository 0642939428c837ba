import { AuthRequiredError, InvalidRequestError } from '../errors.js'
import type { CredentialAuth } from './output.js'

/**
 * A credential's handler-side checks, in the contract's order (§3.3): for the requested space (400
 * InvalidCredential), then (generation C) audience the bare authority DID (401 BadSpaceAudience).
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

import { AuthRequiredError, InvalidRequestError } from '../errors.js'
import type { CredentialAuth } from './output.js'

/** Handler-side credential checks in the contract's order (§3.3): space (400), then audience (401). */
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

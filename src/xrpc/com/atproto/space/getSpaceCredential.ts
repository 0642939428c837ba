import { getSpaceCredential } from '../../../../lexicon/com/atproto/space/getSpaceCredential.js'
import { AttestationError } from '../../../../identity/attestation.js'
import { authorizeCredential, AuthorizationError } from '../../../../policy/authorize.js'
import { hostService } from '../../../../auth/audience.js'
import { lookupHostedSpace } from '../../../../spaces/hosted.js'
import type { XrpcRouter } from '../../../method.js'

/** Delegation token for a credential, in the order of contract §1.1. */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(getSpaceCredential, {
    auth: ctx.auth.delegationToken,
    handler: async ({ input, auth, fail, limit }) => {
      if (auth.spaceUri !== input.space) {
        throw fail(
          'InvalidDelegationToken',
          'Delegation token subject does not match requested space',
        )
      }
      await limit('credentialsPerUser', auth.iss)
      const found = await lookupHostedSpace(ctx, input.space)
      if (found.state === 'foreign') throw fail('SpaceNotFound', 'Space not found')

      let clientId: string | undefined
      if (input.clientAttestation !== undefined) {
        try {
          clientId = (
            await ctx.attestations.verify(
              input.clientAttestation,
              hostService(auth.space.authority),
            )
          ).clientId
        } catch (err) {
          if (err instanceof AttestationError) {
            if (found.state === 'active') ctx.tally.count(input.space, 'refused')
            throw fail('InvalidClientAttestation', err.message)
          }
          throw err
        }
      }

      if (clientId !== undefined) await limit('credentialsPerClient', clientId)
      if (found.state === 'deleted') throw fail('SpaceDeleted', 'Space has been deleted')
      if (found.state === 'absent') throw fail('SpaceNotFound', 'Space not found')

      try {
        await authorizeCredential(
          { config: found.config, user: auth.iss, clientId },
          ctx.policyDeps,
        )
      } catch (err) {
        if (err instanceof AuthorizationError) {
          ctx.tally.count(input.space, 'refused')
          throw fail(err.refusal, err.message)
        }
        throw err
      }
      const credential = await ctx.credentials.issue({
        config: found.config,
        user: auth.iss,
        clientId,
        binding: auth.binding,
      })
      ctx.tally.count(input.space, 'issued')
      return { credential }
    },
  })
}

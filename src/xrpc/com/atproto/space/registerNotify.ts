import { assertCredentialFor } from '../../../../auth/credential-scope.js'
import { ServiceResolutionError } from '../../../../identity/resolver.js'
import { registerNotify } from '../../../../lexicon/com/atproto/space/sync.js'
import { RegistrationLimitError } from '../../../../notify/notify-service.js'
import { InvalidRequestError } from '../../../../errors.js'
import { activeConfig, lookupHostedSpace } from '../../../../spaces/hosted.js'
import type { XrpcRouter } from '../../../method.js'

/**
 * Asks for a space's write notifications (contract §1.3); the service must resolve now, and
 * re-registering extends the expiry. As in the reference nothing proves the caller controls the
 * service: it only receives what listRepos shows a credential holder. New registrations past the
 * per-space or per-user cap (the user from our issuance record) are RegistrationLimitExceeded (400:
 * waiting does not help); renewals never are.
 */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(registerNotify, {
    auth: ctx.auth.spaceCredential(),
    handler: async ({ input, auth, fail, limit }) => {
      assertCredentialFor(auth, input.space)
      const found = await lookupHostedSpace(ctx, input.space)
      if (found.state === 'foreign') throw fail('SpaceNotFound', 'Space not found')
      let endpoint: string
      try {
        endpoint = await ctx.idResolver.resolveServiceEndpoint(input.service)
        ctx.fetcher.check(endpoint)
      } catch (err) {
        if (err instanceof ServiceResolutionError || (err as Error).name === 'FetchError') {
          throw fail('ServiceNotResolvable', `Could not resolve ${input.service}`)
        }
        throw err
      }
      activeConfig(found)
      const holder = await ctx.credentials.holderOf(input.space, auth.jti)
      // Fail closed: a credential this host has no issuance record of registers nothing.
      if (!holder) throw new InvalidRequestError('Unknown credential', 'InvalidCredential')
      // Nothing proves the caller is the service: counted per service for this holder, so a
      // stranger naming someone else's service spends only their own share.
      await limit('registrationsPerService', `${input.service} ${holder}`)
      const expiresAt = new Date(ctx.clock.nowMs() + ctx.cfg.notify.registrationTtlMs)
      try {
        await ctx.notify.register(input.space, input.service, endpoint, expiresAt, holder)
      } catch (err) {
        if (err instanceof RegistrationLimitError)
          throw fail('RegistrationLimitExceeded', err.message)
        throw err
      }
      return { expiresAt: expiresAt.toISOString() }
    },
  })
}

import { assertCredentialFor } from '../../../../auth/credential-scope.js'
import { unregisterNotify } from '../../../../lexicon/com/atproto/space/sync.js'
import type { XrpcRouter } from '../../../method.js'

/** Withdraws a registration (contract §1.4): idempotent, and no resolution of the service. */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(unregisterNotify, {
    auth: ctx.auth.spaceCredential({ audience: 'authority' }),
    handler: async ({ input, auth, fail }) => {
      assertCredentialFor(auth, input.space)
      if (!(await ctx.authorities.isActive(auth.space.authority)))
        throw fail('SpaceNotFound', 'Space not found')
      if ((await ctx.spaces.lookup(input.space)).state !== 'active')
        throw fail('SpaceNotFound', 'Space not found')
      await ctx.notify.unregister(input.space, input.service)
      return undefined
    },
  })
}

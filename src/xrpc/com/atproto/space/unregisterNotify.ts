import { getHostedSpace } from '../../../../spaces/hosted.js'
import { assertCredentialFor } from '../../../../auth/credential-scope.js'
import { unregisterNotify } from '../../../../lexicon/com/atproto/space/sync.js'
import type { XrpcRouter } from '../../../method.js'

/** Withdraws a registration (contract §1.4): idempotent, and no resolution of the service. */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(unregisterNotify, {
    auth: ctx.auth.spaceCredential(),
    handler: async ({ input, auth }) => {
      assertCredentialFor(auth, input.space)
      await getHostedSpace(ctx, input.space)
      await ctx.notify.unregister(input.space, input.service)
      return undefined
    },
  })
}

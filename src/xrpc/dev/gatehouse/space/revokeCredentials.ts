import { authorizeSpaceManagement, xrpcActor } from '../../../../auth/managers.js'
import { revokeCredentials } from '../../../../lexicon/dev/gatehouse/space/revokeCredentials.js'
import { revocationFilter } from '../../../../spaces/credentials.js'
import type { XrpcRouter } from '../../../method.js'

/** Explicit revocation by a manager: refused here at once, repo hosts told in the background. */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(revokeCredentials, {
    auth: ctx.auth.serviceAuth(revokeCredentials.nsid),
    handler: async ({ input, auth }) => {
      const config = await authorizeSpaceManagement(ctx, auth, input.space, 'credentials')
      const revoked = await ctx.credentials.revoke(config, revocationFilter(input), {
        by: xrpcActor(auth),
        asked: true,
      })
      return { revoked }
    },
  })
}

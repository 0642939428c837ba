import { authorizeSpaceManagement, xrpcActor } from '../../../../auth/managers.js'
import { updateSpace } from '../../../../lexicon/com/atproto/simplespace/manage.js'
import type { XrpcRouter } from '../../../method.js'
import { decodePolicy } from './_policy-input.js'

/** Replaces the given policies wholesale; narrowing app access revokes what refused apps hold. */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(updateSpace, {
    auth: ctx.auth.serviceAuth(updateSpace.nsid),
    handler: async ({ input, auth, fail }) => {
      const change = decodePolicy(input, fail)
      await authorizeSpaceManagement(ctx, auth, input.space, 'space-config')
      await ctx.manager.updatePolicy(input.space, change, xrpcActor(auth))
      return undefined
    },
  })
}

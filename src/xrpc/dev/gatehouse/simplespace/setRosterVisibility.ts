import { authorizeSpaceManagement, xrpcActor } from '../../../../auth/managers.js'
import { setRosterVisibility } from '../../../../lexicon/dev/gatehouse/simplespace/oplog.js'
import type { XrpcRouter } from '../../../method.js'

/** Sets who may read the member list (admins of the authority only). */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(setRosterVisibility, {
    auth: ctx.auth.serviceAuth(setRosterVisibility.nsid),
    handler: async ({ input, auth }) => {
      await authorizeSpaceManagement(ctx, auth, input.space, 'space-config')
      await ctx.spaces.setRosterVisibility(input.space, input.visibility, xrpcActor(auth))
      return undefined
    },
  })
}

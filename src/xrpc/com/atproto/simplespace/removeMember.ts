import { authorizeSpaceManagement, xrpcActor } from '../../../../auth/managers.js'
import { removeMember } from '../../../../lexicon/com/atproto/simplespace/manage.js'
import type { XrpcRouter } from '../../../method.js'

/** Removes a member (no-op when absent) and revokes its live credentials (member-list spaces). */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(removeMember, {
    auth: ctx.auth.serviceAuth(removeMember.nsid),
    handler: async ({ input, auth }) => {
      const config = await authorizeSpaceManagement(ctx, auth, input.space, 'membership', {
        managingApp: true,
      })
      await ctx.manager.removeMember(config, input.did, xrpcActor(auth))
      return undefined
    },
  })
}

import { authorizeSpaceManagement, xrpcActor } from '../../../../auth/managers.js'
import { putMember } from '../../../../lexicon/com/atproto/simplespace/manage.js'
import type { XrpcRouter } from '../../../method.js'

/** Adds a member or sets its flags; clearing `read` revokes its live credentials (member-list spaces). */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(putMember, {
    auth: ctx.auth.serviceAuth(putMember.nsid),
    handler: async ({ input, auth }) => {
      const config = await authorizeSpaceManagement(ctx, auth, input.space, 'membership', {
        managingApp: true,
      })
      await ctx.manager.putMember(
        config,
        input.did,
        { read: input.read, write: input.write },
        xrpcActor(auth),
      )
      return undefined
    },
  })
}

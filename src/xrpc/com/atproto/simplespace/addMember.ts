import { authorizeSpaceManagement, xrpcActor } from '../../../../auth/managers.js'
import { addMember } from '../../../../lexicon/com/atproto/simplespace/manage.js'
import type { XrpcRouter } from '../../../method.js'

/** Generation A's addMember: a member with read and write. */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(addMember, {
    auth: ctx.auth.serviceAuth(addMember.nsid),
    handler: async ({ input, auth }) => {
      const config = await authorizeSpaceManagement(ctx, auth, input.space, 'membership', {
        managingApp: true,
      })
      await ctx.manager.putMember(config, input.did, { read: true, write: true }, xrpcActor(auth))
      return undefined
    },
  })
}

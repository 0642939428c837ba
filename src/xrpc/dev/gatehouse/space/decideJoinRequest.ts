import { authorizeSpaceManagement, xrpcActor } from '../../../../auth/managers.js'
import { joinRequestOut } from '../../../../lexicon/dev/gatehouse/space/defs.js'
import { decideJoinRequest } from '../../../../lexicon/dev/gatehouse/space/decideJoinRequest.js'
import type { XrpcRouter } from '../../../method.js'

/**
 * A manager, or the space's managing app (which is sent each new request), approves or denies a
 * pending join request.
 */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(decideJoinRequest, {
    auth: ctx.auth.serviceAuth(decideJoinRequest.nsid),
    handler: async ({ input, auth }) => {
      const config = await authorizeSpaceManagement(ctx, auth, input.space, 'join-requests', {
        managingApp: true,
      })
      const decided =
        input.decision === 'approve'
          ? await ctx.admission.approve(
              config,
              input.id,
              { read: input.read ?? true, write: input.write ?? false },
              xrpcActor(auth),
            )
          : await ctx.admission.deny(config.uri, input.id, input.reason ?? null, xrpcActor(auth))
      return joinRequestOut(decided)
    },
  })
}

import { assertAddressedToHost } from '../../../../auth/audience.js'
import { joinRequestOut } from '../../../../lexicon/dev/gatehouse/space/defs.js'
import { getJoinRequest } from '../../../../lexicon/dev/gatehouse/space/getJoinRequest.js'
import { spaceAuthority } from '../../../../lexicon/formats.js'
import { getHostedSpace } from '../../../../spaces/hosted.js'
import type { XrpcRouter } from '../../../method.js'
import { requesterOf } from './requester.js'

/** The caller's own latest join request and its decision; nobody else's. */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(getJoinRequest, {
    auth: ctx.auth.serviceAuth(getJoinRequest.nsid),
    handler: async ({ params, auth, fail }) => {
      assertAddressedToHost(auth, ctx.cfg.service.did, spaceAuthority(params.space))
      const config = await getHostedSpace(ctx, params.space)
      const mine = await ctx.admission.latestRequest(config.uri, requesterOf(auth))
      if (!mine) throw fail('JoinRequestNotFound', 'You have not asked to join this space')
      return joinRequestOut(mine)
    },
  })
}

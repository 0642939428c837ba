import { assertAddressedToHost } from '../../../../auth/audience.js'
import { joinRequestOut } from '../../../../lexicon/dev/gatehouse/space/defs.js'
import { requestJoin } from '../../../../lexicon/dev/gatehouse/space/requestJoin.js'
import { spaceAuthority } from '../../../../lexicon/formats.js'
import { getHostedSpace } from '../../../../spaces/hosted.js'
import type { XrpcRouter } from '../../../method.js'
import { requesterOf } from './requester.js'

/** A user's app asks to join a space for them: service auth signed by the user. */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(requestJoin, {
    auth: ctx.auth.serviceAuth(requestJoin.nsid),
    handler: async ({ input, auth }) => {
      assertAddressedToHost(auth, ctx.cfg.service.did, spaceAuthority(input.space))
      const config = await getHostedSpace(ctx, input.space)
      const request = await ctx.admission.requestJoin(
        config,
        requesterOf(auth),
        'xrpc',
        input.message,
      )
      return joinRequestOut(request)
    },
  })
}

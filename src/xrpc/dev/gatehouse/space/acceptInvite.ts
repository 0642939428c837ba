import { assertAddressedToHost } from '../../../../auth/audience.js'
import { acceptInvite } from '../../../../lexicon/dev/gatehouse/space/acceptInvite.js'
import { spaceAuthority } from '../../../../lexicon/formats.js'
import type { XrpcRouter } from '../../../method.js'
import { requesterOf } from './requester.js'

/** An invitee's app accepts an invite for them: service auth signed by the invitee. */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(acceptInvite, {
    auth: ctx.auth.serviceAuth(acceptInvite.nsid),
    handler: async ({ input, auth }) => {
      const space = (await ctx.admission.findInvite(input.code))?.space
      // Addressed to this host or the invite's authority; the answer is the same 403 whether the
      // code exists or not, so a misaddressed token learns nothing of it.
      assertAddressedToHost(auth, ctx.cfg.service.did, space && spaceAuthority(space))
      const { changed: _, ...accepted } = await ctx.admission.acceptInvite(
        input.code,
        requesterOf(auth),
        'xrpc',
      )
      return accepted
    },
  })
}

import { authorizeSpaceManagement } from '../../../../auth/managers.js'
import { getMemberState } from '../../../../lexicon/dev/gatehouse/simplespace/oplog.js'
import type { XrpcRouter } from '../../../method.js'

/** The member list's current rev, digest and count: what a mirror checks its replay against. */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(getMemberState, {
    auth: ctx.auth.serviceAuth(getMemberState.nsid),
    handler: async ({ params, auth }) => {
      await authorizeSpaceManagement(ctx, auth, params.space, 'moderator', { managingApp: true })
      const state = await ctx.spaces.members.state(params.space)
      return {
        ...(state.rev ? { rev: state.rev } : {}),
        digest: { $bytes: Buffer.from(state.digest).toString('base64').replace(/=+$/, '') },
        count: state.count,
      }
    },
  })
}

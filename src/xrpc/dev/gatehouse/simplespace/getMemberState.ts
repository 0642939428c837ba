import { toBytesJson } from '../../../../lexicon/formats.js'
import { authorizeRosterRead } from '../../../../auth/managers.js'
import { getMemberState } from '../../../../lexicon/dev/gatehouse/simplespace/oplog.js'
import type { XrpcRouter } from '../../../method.js'

/** The member list's current rev, digest and count: what a mirror checks its replay against. */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(getMemberState, {
    auth: ctx.auth.rosterReader(getMemberState.nsid),
    handler: async ({ params, auth }) => {
      const { full } = await authorizeRosterRead(ctx, auth, params.space, 'count')
      const state = await ctx.spaces.members.state(params.space)
      // `count` visibility: the size only; rev and digest would let a caller test guesses of the roster.
      if (!full) return { count: state.count }
      return {
        ...(state.rev ? { rev: state.rev } : {}),
        digest: toBytesJson(state.digest),
        count: state.count,
      }
    },
  })
}

import { toBytesJson } from '../../../../lexicon/formats.js'
import { authorizeRosterRead } from '../../../../auth/managers.js'
import { listMemberOps } from '../../../../lexicon/dev/gatehouse/simplespace/oplog.js'
import { OplogCompactedError } from '../../../../members/member-list.js'
import type { XrpcRouter } from '../../../method.js'

/** The oplog after `since` with rev, count and LtHash digest; too old a `since`: OplogCompacted. */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(listMemberOps, {
    auth: ctx.auth.rosterReader(listMemberOps.nsid),
    handler: async ({ params, auth, fail }) => {
      await authorizeRosterRead(ctx, auth, params.space, 'roster')
      try {
        const { ops, state } = await ctx.spaces.members.ops(
          params.space,
          params.since,
          params.limit,
        )
        const last = ops[ops.length - 1]
        return {
          ops,
          ...(last ? { cursor: last.rev } : {}),
          ...(state.rev ? { rev: state.rev } : {}),
          digest: toBytesJson(state.digest),
          count: state.count,
        }
      } catch (err) {
        if (err instanceof OplogCompactedError) throw fail('OplogCompacted', err.message)
        throw err
      }
    },
  })
}

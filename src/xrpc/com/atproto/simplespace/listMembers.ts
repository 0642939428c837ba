import { authorizeRosterRead } from '../../../../auth/managers.js'
import { listMembers } from '../../../../lexicon/com/atproto/simplespace/manage.js'
import type { XrpcRouter } from '../../../method.js'

/** The member list by DID, as roster visibility allows; the cursor is the last DID (keyset pages). */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(listMembers, {
    auth: ctx.auth.rosterReader(listMembers.nsid),
    handler: async ({ params, auth }) => {
      await authorizeRosterRead(ctx, auth, params.space, 'roster')
      // One row beyond the page: no cursor on the last page, so no request for an empty one.
      const rows = await ctx.spaces.members.list(params.space, params.limit + 1, params.cursor)
      const members = rows.slice(0, params.limit)
      return rows.length > params.limit
        ? { members, cursor: members[members.length - 1]!.did }
        : { members }
    },
  })
}

import { authorizeRosterRead } from '../../../../auth/managers.js'
import { listMembers } from '../../../../lexicon/com/atproto/simplespace/manage.js'
import type { XrpcRouter } from '../../../method.js'

/**
 * The member list, by DID: for managers and the space's managing app, and beyond them as the space's
 * roster visibility allows (default `owner`, as in the reference). Keyset pagination on the primary key: the cursor is the last DID, so pages
 * stay consistent while members are added or removed. The last page carries no cursor.
 */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(listMembers, {
    auth: ctx.auth.rosterReader(listMembers.nsid),
    handler: async ({ params, auth }) => {
      await authorizeRosterRead(ctx, auth, params.space, 'roster')
      // One row beyond the page says whether another page follows: a cursor on the last page would
      // cost every client a request for an empty one (the reference always sends it).
      const rows = await ctx.spaces.listMembers(params.space, params.limit + 1, params.cursor)
      const members = rows.slice(0, params.limit)
      return rows.length > params.limit
        ? { members, cursor: members[members.length - 1]!.did }
        : { members }
    },
  })
}

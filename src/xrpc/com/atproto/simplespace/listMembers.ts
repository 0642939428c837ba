import { authorizeRosterRead } from '../../../../auth/managers.js'
import { listMembers } from '../../../../lexicon/com/atproto/simplespace/manage.js'
import type { XrpcRouter } from '../../../method.js'

/**
 * The member list, by DID: for managers and the space's managing app, and beyond them as the space's
 * roster visibility allows (default `owner`, as in the reference). Keyset pagination on the primary key: the cursor is the last DID, so pages
 * stay consistent while members are added or removed.
 */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(listMembers, {
    auth: ctx.auth.rosterReader(listMembers.nsid),
    handler: async ({ params, auth }) => {
      await authorizeRosterRead(ctx, auth, params.space, 'roster')
      const members = await ctx.spaces.listMembers(params.space, params.limit, params.cursor)
      const last = members[members.length - 1]
      return { members, ...(last ? { cursor: last.did } : {}) }
    },
  })
}

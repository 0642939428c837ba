import { authorizeSpaceManagement } from '../../../../auth/managers.js'
import { listMembers } from '../../../../lexicon/com/atproto/simplespace/manage.js'
import type { XrpcRouter } from '../../../method.js'

/**
 * The member list, by DID, for managers and the space's managing app (the reference's default: the
 * roster is the owner's). Keyset pagination on the primary key: the cursor is the last DID, so pages
 * stay consistent while members are added or removed.
 */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(listMembers, {
    auth: ctx.auth.serviceAuth(listMembers.nsid),
    handler: async ({ params, auth }) => {
      await authorizeSpaceManagement(ctx, auth, params.space, 'moderator', { managingApp: true })
      const members = await ctx.spaces.listMembers(params.space, params.limit, params.cursor)
      const last = members[members.length - 1]
      return { members, ...(last ? { cursor: last.did } : {}) }
    },
  })
}

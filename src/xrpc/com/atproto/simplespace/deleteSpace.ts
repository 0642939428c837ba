import { spaceAuthority } from '../../../../lexicon/formats.js'
import { assertManager, xrpcActor } from '../../../../auth/managers.js'
import { deleteSpace } from '../../../../lexicon/com/atproto/simplespace/manage.js'
import { SpaceError } from '../../../../spaces/space-service.js'
import type { XrpcRouter } from '../../../method.js'

/** Deletes a space (idempotent), revoking its credentials; syncers are told through the relay. */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(deleteSpace, {
    auth: ctx.auth.serviceAuth(deleteSpace.nsid),
    handler: async ({ input, auth, fail }) => {
      const authority = spaceAuthority(input.space)
      await assertManager(ctx, auth, authority, 'space-config')
      try {
        if (await ctx.manager.deleteSpace(input.space, xrpcActor(auth)))
          await ctx.notify.spaceDeleted(input.space)
      } catch (err) {
        if (err instanceof SpaceError) throw fail('SpaceNotFound', err.message)
        throw err
      }
      return undefined
    },
  })
}

import { assertManager } from '../../../../auth/managers.js'
import { revokeCredentials } from '../../../../lexicon/dev/gatehouse/space/revokeCredentials.js'
import { SpaceError } from '../../../../spaces/space-service.js'
import type { XrpcRouter } from '../../../method.js'

/** Explicit revocation by a manager: refused here at once, repo hosts told in the background. */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(revokeCredentials, {
    auth: ctx.auth.serviceAuth(revokeCredentials.nsid),
    handler: async ({ input, auth, fail }) => {
      const authority = input.space.split('/')[2]!
      await assertManager(ctx, auth, authority, 'moderator')
      if (!(await ctx.authorities.isActive(authority)))
        throw fail('SpaceNotFound', 'Space not found')
      let config
      try {
        config = await ctx.spaces.getActiveConfig(input.space)
      } catch (err) {
        if (err instanceof SpaceError) throw fail('SpaceNotFound', err.message)
        throw err
      }
      const revoked = await ctx.credentials.revoke(config, {
        ...(input.user !== undefined ? { userDid: input.user } : {}),
        ...(input.clientId !== undefined ? { clientId: input.clientId } : {}),
        ...(input.credentials !== undefined ? { jtis: input.credentials } : {}),
      })
      return { revoked }
    },
  })
}

import { audienceDid } from '../../../../auth/audience.js'
import { assertManager } from '../../../../auth/managers.js'
import { ForbiddenError } from '../../../../errors.js'
import {
  createSpace,
  createSpaceRequest,
} from '../../../../lexicon/com/atproto/simplespace/manage.js'
import { isDid } from '../../../../lexicon/formats.js'
import { nextTid } from '../../../../spaces/tid.js'
import { SpaceError } from '../../../../spaces/space-service.js'
import type { SpacePolicy } from '../../../../policy/types.js'
import type { XrpcRouter } from '../../../method.js'
import { decodePolicy } from './_policy-input.js'

/**
 * Creates a space under an authority Gatehouse answers for. The reference derives the authority from
 * the caller (the authority's own account); here the caller is a manager, so the service-auth
 * audience names the authority: `aud` = `{authority}` or `{authority}#atproto_space_host`.
 * Both body shapes are read (generation A's `{type, policy, appAccess}`: see createSpaceRequest).
 */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(createSpace, {
    auth: ctx.auth.serviceAuth(createSpace.nsid),
    handler: async ({ input, auth, fail }) => {
      const authority = audienceDid(auth.aud)
      if (!isDid(authority) || !(await ctx.authorities.isActive(authority))) {
        throw new ForbiddenError(
          'address createSpace (service auth aud) to an authority Gatehouse answers for',
        )
      }
      await assertManager(ctx, auth, authority, 'admin')
      const request = createSpaceRequest(input)
      const policy = decodePolicy(request, fail) as SpacePolicy
      try {
        const config = await ctx.spaces.create({
          authority,
          spaceType: request.spaceType,
          skey: request.skey ?? nextTid(ctx.clock.nowMs()),
          ...policy,
        })
        return { uri: config.uri }
      } catch (err) {
        if (err instanceof SpaceError && err.error === 'SpaceAlreadyExists')
          throw fail('SpaceAlreadyExists', err.message)
        throw err
      }
    },
  })
}

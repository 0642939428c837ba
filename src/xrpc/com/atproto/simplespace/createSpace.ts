import { audienceDid } from '../../../../auth/audience.js'
import { assertManager, xrpcActor } from '../../../../auth/managers.js'
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

/** The caller is a manager, not the authority's account, so `aud` names the authority. */
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
      await assertManager(ctx, auth, authority, 'space-config')
      const request = createSpaceRequest(input)
      const policy = decodePolicy(request, fail) as SpacePolicy
      try {
        const config = await ctx.spaces.create(
          {
            authority,
            spaceType: request.spaceType,
            skey: request.skey ?? nextTid(ctx.clock.nowMs()),
            ...policy,
          },
          xrpcActor(auth),
        )
        return { uri: config.uri }
      } catch (err) {
        if (err instanceof SpaceError && err.error === 'SpaceAlreadyExists')
          throw fail('SpaceAlreadyExists', err.message)
        throw err
      }
    },
  })
}

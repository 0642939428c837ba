import { xrpcActor } from '../../../../auth/managers.js'
import { rotateRotationKeys } from '../../../../lexicon/dev/gatehouse/authority/defs.js'
import type { XrpcRouter } from '../../../method.js'
import { authorityOut, authorizeAuthority, lifecycleStep } from './shared.js'

/** A new Gatehouse rotation key for a did:plc; the owner's own may be replaced or removed too. */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(rotateRotationKeys, {
    auth: ctx.auth.serviceAuth(rotateRotationKeys.nsid),
    handler: async ({ input, auth }) => {
      await authorizeAuthority(ctx, auth, input.did)
      const ownerRotationKey = input.removeOwnerRotationKey ? null : input.ownerRotationKey
      return authorityOut(
        await lifecycleStep(() =>
          ctx.lifecycle.rotateRotationKeys(input.did, { ownerRotationKey }, xrpcActor(auth)),
        ),
      )
    },
  })
}

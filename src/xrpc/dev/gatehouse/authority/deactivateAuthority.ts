import { xrpcActor } from '../../../../auth/managers.js'
import { deactivateAuthority } from '../../../../lexicon/dev/gatehouse/authority/defs.js'
import type { XrpcRouter } from '../../../method.js'
import { authorityOut, authorizeAuthority, lifecycleStep } from './shared.js'

/** Stops minting credentials and relaying writes for an authority until it is activated again. */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(deactivateAuthority, {
    auth: ctx.auth.serviceAuth(deactivateAuthority.nsid),
    handler: async ({ input, auth }) => {
      await authorizeAuthority(ctx, auth, input.did)
      return authorityOut(
        await lifecycleStep(() => ctx.lifecycle.deactivate(input.did, xrpcActor(auth))),
      )
    },
  })
}

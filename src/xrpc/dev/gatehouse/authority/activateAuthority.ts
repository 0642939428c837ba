import { xrpcActor } from '../../../../auth/managers.js'
import { activateAuthority } from '../../../../lexicon/dev/gatehouse/authority/defs.js'
import type { XrpcRouter } from '../../../method.js'
import { authorityOut, authorizeAuthority, lifecycleStep } from './shared.js'

/** Starts answering for an authority (once its owner published our keys), or resumes a deactivated one. */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(activateAuthority, {
    auth: ctx.auth.serviceAuth(activateAuthority.nsid),
    handler: async ({ input, auth }) => {
      await authorizeAuthority(ctx, auth, input.did)
      return authorityOut(
        await lifecycleStep(() => ctx.lifecycle.activate(input.did, xrpcActor(auth))),
      )
    },
  })
}

import { xrpcActor } from '../../../../auth/managers.js'
import { updateAuthority } from '../../../../lexicon/dev/gatehouse/authority/defs.js'
import type { XrpcRouter } from '../../../method.js'
import { authorityOut, authorizeAuthority, lifecycleStep } from './shared.js'

/** Changes an authority's settings (today: whether `#atproto_pds` names Gatehouse). Owner only. */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(updateAuthority, {
    auth: ctx.auth.serviceAuth(updateAuthority.nsid),
    handler: async ({ input, auth }) => {
      await authorizeAuthority(ctx, auth, input.did)
      const view = await lifecycleStep(() =>
        input.pdsService === undefined
          ? ctx.lifecycle.describe(input.did)
          : ctx.lifecycle.setPdsService(input.did, input.pdsService, xrpcActor(auth)),
      )
      return authorityOut(view)
    },
  })
}

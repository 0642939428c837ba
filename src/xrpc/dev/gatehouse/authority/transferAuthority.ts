import { xrpcActor } from '../../../../auth/managers.js'
import { transferAuthority } from '../../../../lexicon/dev/gatehouse/authority/defs.js'
import type { XrpcRouter } from '../../../method.js'
import { authorityOut, authorizeAuthority, lifecycleStep } from './shared.js'

/** Hands the authority to another controller; Gatehouse stops minting and relaying for it. */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(transferAuthority, {
    auth: ctx.auth.serviceAuth(transferAuthority.nsid),
    handler: async ({ input, auth }) => {
      await authorizeAuthority(ctx, auth, input.did)
      return authorityOut(
        await lifecycleStep(() => ctx.lifecycle.transfer(input.did, input, xrpcActor(auth))),
      )
    },
  })
}

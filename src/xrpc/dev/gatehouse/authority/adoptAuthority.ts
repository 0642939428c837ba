import { xrpcActor } from '../../../../auth/managers.js'
import { adoptAuthority } from '../../../../lexicon/dev/gatehouse/authority/defs.js'
import type { XrpcRouter } from '../../../method.js'
import { authorityOut, authorizeCreator, lifecycleStep } from './shared.js'

/** Keys for an existing DID, and what its owner must publish before Gatehouse answers for it. */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(adoptAuthority, {
    auth: ctx.auth.serviceAuth(adoptAuthority.nsid),
    handler: async ({ input, auth }) => {
      const owner = authorizeCreator(ctx, auth)
      const out = await lifecycleStep(() =>
        ctx.lifecycle.adopt(
          {
            did: input.did,
            signing: input.signing,
            owner,
            pdsService: input.pdsService,
          },
          xrpcActor(auth),
        ),
      )
      return {
        authority: authorityOut(out.authority),
        ...(out.plcOperation ? { plcOperation: { ...out.plcOperation } } : {}),
        ...(out.didDocument ? { didDocument: { ...out.didDocument } } : {}),
      }
    },
  })
}

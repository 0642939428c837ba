import { xrpcActor } from '../../../../auth/managers.js'
import { createAuthority } from '../../../../lexicon/dev/gatehouse/authority/defs.js'
import type { XrpcRouter } from '../../../method.js'
import { authorityOut, authorizeCreator, lifecycleStep } from './shared.js'

/** A new authority DID: did:plc through the directory, or a did:web Gatehouse serves. */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(createAuthority, {
    auth: ctx.auth.serviceAuth(createAuthority.nsid),
    handler: async ({ input, auth }) => {
      const owner = authorizeCreator(ctx, auth)
      const opts = {
        owner,
        handle: input.handle,
        separateSpaceKey: input.separateSpaceKey,
        pdsService: input.pdsService,
      }
      const by = xrpcActor(auth)
      const view = await lifecycleStep(() =>
        input.method === 'plc'
          ? ctx.lifecycle.createPlc({ ...opts, ownerRotationKey: input.ownerRotationKey }, by)
          : ctx.lifecycle.createWeb({ ...opts, did: input.did! }, by),
      )
      return authorityOut(view)
    },
  })
}

import { getAuthority } from '../../../../lexicon/dev/gatehouse/authority/defs.js'
import type { XrpcRouter } from '../../../method.js'
import { authorityOut, authorizeAuthority, lifecycleStep } from './shared.js'

/** An authority's state and public keys, for any of its managers. */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(getAuthority, {
    auth: ctx.auth.serviceAuth(getAuthority.nsid),
    handler: async ({ params, auth }) => {
      await authorizeAuthority(ctx, auth, params.did, 'read')
      return authorityOut(await lifecycleStep(() => ctx.lifecycle.describe(params.did)))
    },
  })
}

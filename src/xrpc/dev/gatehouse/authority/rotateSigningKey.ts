import { xrpcActor } from '../../../../auth/managers.js'
import { rotateSigningKey } from '../../../../lexicon/dev/gatehouse/authority/defs.js'
import type { XrpcRouter } from '../../../method.js'
import { authorityOut, authorizeAuthority, lifecycleStep } from './shared.js'

/** A new #atproto (or #atproto_space) key, published before it signs anything. */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(rotateSigningKey, {
    auth: ctx.auth.serviceAuth(rotateSigningKey.nsid),
    handler: async ({ input, auth }) => {
      await authorizeAuthority(ctx, auth, input.did)
      return authorityOut(
        await lifecycleStep(() =>
          ctx.lifecycle.rotateSigningKey(input.did, input.purpose ?? 'atproto', xrpcActor(auth)),
        ),
      )
    },
  })
}

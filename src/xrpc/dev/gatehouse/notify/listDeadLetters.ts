import { spaceAuthority } from '../../../../lexicon/formats.js'
import { assertManager } from '../../../../auth/managers.js'
import { listDeadLetters } from '../../../../lexicon/dev/gatehouse/notify/listDeadLetters.js'
import type { XrpcRouter } from '../../../method.js'

/** What the relay gave up on, for a space's managers. */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(listDeadLetters, {
    auth: ctx.auth.serviceAuth(listDeadLetters.nsid),
    handler: async ({ params, auth }) => {
      await assertManager(ctx, auth, spaceAuthority(params.space), 'notify')
      return { deadLetters: await ctx.notify.deadLetters(params.space, params.limit) }
    },
  })
}

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
      const rows = await ctx.db.prisma.deadLetter.findMany({
        where: { space: params.space },
        orderBy: { createdAt: 'desc' },
        take: params.limit,
      })
      return {
        deadLetters: rows.map((d) => ({
          service: d.service,
          spaceRev: d.spaceRev,
          kind: d.kind,
          attempts: d.attempts,
          ...(d.lastError ? { lastError: d.lastError } : {}),
          ...(d.credentials ? { credentials: JSON.parse(d.credentials) as string[] } : {}),
          createdAt: d.createdAt.toISOString(),
        })),
      }
    },
  })
}

import { Readable } from 'node:stream'
import { authorizeRosterRead } from '../../../../auth/managers.js'
import { exportMembers } from '../../../../lexicon/dev/gatehouse/simplespace/bulk.js'
import type { XrpcRouter } from '../../../method.js'

/** The member list as JSON lines in DID order, streamed page by page, as importMembers takes it. */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(exportMembers, {
    auth: ctx.auth.rosterReader(exportMembers.nsid),
    handler: async ({ params, auth }) => {
      await authorizeRosterRead(ctx, auth, params.space, 'roster')
      const members = ctx.spaces.members.iterate(params.space)
      return Readable.from(
        (async function* () {
          for await (const m of members) yield `${JSON.stringify(m)}\n`
        })(),
      )
    },
  })
}

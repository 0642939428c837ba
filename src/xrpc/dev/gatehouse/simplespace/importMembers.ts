import { authorizeSpaceManagement, xrpcActor } from '../../../../auth/managers.js'
import { importEntries, importMembers } from '../../../../lexicon/dev/gatehouse/simplespace/bulk.js'
import { readJsonLines } from '../../../ndjson.js'
import type { XrpcRouter } from '../../../method.js'

const MAX_LINES = 10_000_000

/** Streamed JSON-lines import (SpaceManager.importMembers: batched, idempotent). */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(importMembers, {
    auth: ctx.auth.serviceAuth(importMembers.nsid),
    handler: async ({ params, auth, body }) => {
      const config = await authorizeSpaceManagement(ctx, auth, params.space, 'bulk-membership')
      const lines = readJsonLines(body!, { maxLineBytes: 4096, maxLines: MAX_LINES })
      return ctx.manager.importMembers(config, importEntries(lines), xrpcActor(auth))
    },
  })
}

import { authorizeSpaceManagement } from '../../../../auth/managers.js'
import { importEntries, importMembers } from '../../../../lexicon/dev/gatehouse/simplespace/bulk.js'
import { readJsonLines } from '../../../ndjson.js'
import type { XrpcRouter } from '../../../method.js'

export const IMPORT_BATCH = 1000
/**
 * Members written per transaction. A transaction holds the SQLite writer (and, being synchronous
 * there, the event loop) for its whole length: a few milliseconds for 100 members, against 25 ms
 * and more for a whole batch, which every other request waited for at each step of its own. (With
 * 250, the import-interference bench still read other requests' p99 at 4.5-8x idle; with 100,
 * about 2x, and the import was no slower.)
 */
export const IMPORT_SLICE = 100
const MAX_LINES = 10_000_000

/**
 * Bulk import of a member list from JSON lines, read as it streams in (SpaceManager.importMembers:
 * batches of IMPORT_BATCH lines, transactions of IMPORT_SLICE members, idempotent).
 */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(importMembers, {
    auth: ctx.auth.serviceAuth(importMembers.nsid),
    handler: async ({ params, auth, body }) => {
      const config = await authorizeSpaceManagement(ctx, auth, params.space, 'admin')
      const lines = readJsonLines(body!, { maxLineBytes: 4096, maxLines: MAX_LINES })
      return ctx.manager.importMembers(config, importEntries(lines), {
        batch: IMPORT_BATCH,
        slice: IMPORT_SLICE,
      })
    },
  })
}

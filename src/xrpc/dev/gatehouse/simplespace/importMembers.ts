import { authorizeSpaceManagement } from '../../../../auth/managers.js'
import { InvalidRequestError } from '../../../../errors.js'
import { importLine, importMembers } from '../../../../lexicon/dev/gatehouse/simplespace/bulk.js'
import type { ImportEntry } from '../../../../spaces/space-service.js'
import { readJsonLines } from '../../../ndjson.js'
import type { XrpcRouter } from '../../../method.js'

export const IMPORT_BATCH = 1000
const MAX_LINES = 10_000_000

/**
 * Bulk import of a member list from JSON lines (`{"did","read","write"}` or `{"did","remove":true}`),
 * read as it streams in and applied in batches of IMPORT_BATCH lines (SpaceManager.importMembers),
 * where the last line for a DID wins. Idempotent: lines that change nothing append nothing, so a
 * failed import can simply be sent again. A bad line stops the import with a 400 naming it; what
 * was committed before it stays.
 */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(importMembers, {
    auth: ctx.auth.serviceAuth(importMembers.nsid),
    handler: async ({ params, auth, body }) => {
      const config = await authorizeSpaceManagement(ctx, auth, params.space, 'admin')
      let received = 0
      let changed = 0
      let batches = 0
      let batch: ImportEntry[] = []
      const flush = async () => {
        if (batch.length === 0) return
        // One entry per DID, the last line's: no DID is split across two transactions.
        const entries = [...new Map(batch.map((e) => [e.did, e])).values()]
        batch = []
        changed += await ctx.manager.importMembers(config, entries)
        batches++
      }
      for await (const { line, value } of readJsonLines(body!, {
        maxLineBytes: 4096,
        maxLines: MAX_LINES,
      })) {
        const parsed = importLine.safeParse(value)
        if (!parsed.success) {
          throw new InvalidRequestError(
            `line ${line}: expected {"did","read","write"} or {"did","remove":true}`,
          )
        }
        const entry = parsed.data
        batch.push({
          did: entry.did,
          flags: 'remove' in entry ? undefined : { read: entry.read, write: entry.write },
        })
        received++
        if (batch.length >= IMPORT_BATCH) await flush()
      }
      await flush()
      return { received, changed, unchanged: received - changed, batches }
    },
  })
}

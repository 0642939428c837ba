import { authorizeSpaceManagement } from '../../../../auth/managers.js'
import { InvalidRequestError } from '../../../../errors.js'
import { importLine, importMembers } from '../../../../lexicon/dev/gatehouse/simplespace/bulk.js'
import type { Flags } from '../../../../members/member-list.js'
import { readJsonLines } from '../../../ndjson.js'
import type { XrpcRouter } from '../../../method.js'

export const IMPORT_BATCH = 1000
const MAX_LINES = 10_000_000

/**
 * Bulk import of a member list from JSON lines (`{"did","read","write"}` or `{"did","remove":true}`),
 * read as it streams in and committed in batches of IMPORT_BATCH, each one transaction with its
 * oplog entries. Idempotent: lines that change nothing append nothing, so a failed import can simply
 * be sent again. A bad line stops the import with a 400 naming it; earlier batches stay committed.
 */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(importMembers, {
    auth: ctx.auth.serviceAuth(importMembers.nsid),
    handler: async ({ params, auth, body }) => {
      const config = await authorizeSpaceManagement(ctx, auth, params.space, 'admin')
      let received = 0
      let changed = 0
      let batches = 0
      let batch: { did: string; flags: Flags | undefined }[] = []
      const flush = async () => {
        if (batch.length === 0) return
        const entries = batch
        batch = []
        const done = await ctx.db.hot.transaction((q) =>
          ctx.spaces.members.applyBatch(q, params.space, entries),
        )
        changed += done.length
        batches++
        // Members who lost read lose their live credentials (member-list spaces).
        const lostRead = done.filter((c) => c.before?.read && !c.after?.read).map((c) => c.did)
        if (lostRead.length && config.readPolicy.kind === 'member-list') {
          await ctx.credentials.revoke(config, { userDidIn: lostRead })
        }
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

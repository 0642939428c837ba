import { setImmediate as turn } from 'node:timers/promises'
import { authorizeSpaceManagement } from '../../../../auth/managers.js'
import { InvalidRequestError } from '../../../../errors.js'
import { importLine, importMembers } from '../../../../lexicon/dev/gatehouse/simplespace/bulk.js'
import type { Flags } from '../../../../members/member-list.js'
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
 * Bulk import of a member list from JSON lines (`{"did","read","write"}` or `{"did","remove":true}`),
 * read as it streams in and taken in batches of IMPORT_BATCH lines, where the last line for a DID
 * wins; a batch is committed in transactions of at most IMPORT_SLICE members, each with its oplog
 * entries, and every other request gets a turn before each of them, so a million-line import does
 * not starve the rest of the server. Idempotent: lines that change nothing append nothing, so a
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
      let batch: { did: string; flags: Flags | undefined }[] = []
      const flush = async () => {
        if (batch.length === 0) return
        // One entry per DID, the last line's: no DID is split across two transactions.
        const entries = [...new Map(batch.map((e) => [e.did, e])).values()]
        batch = []
        const done: Awaited<ReturnType<typeof ctx.spaces.members.applyBatch>> = []
        for (let i = 0; i < entries.length; i += IMPORT_SLICE) {
          // Through the event loop, not just the microtask queue: requests that arrived meanwhile
          // run first, and the queries they queued get the SQLite connection (handed out in
          // order) before this transaction does.
          await turn()
          const slice = entries.slice(i, i + IMPORT_SLICE)
          done.push(
            ...(await ctx.db.hot.transaction((q) =>
              ctx.spaces.members.applyBatch(q, params.space, slice),
            )),
          )
        }
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

import { z } from 'zod'
import { InvalidRequestError } from '../../../../errors.js'
import { defineProcedure, defineQuery } from '../../../method.js'
import { did, param, spaceRef } from '../../../formats.js'

/** Bulk member-list methods — lexicons/dev/gatehouse/simplespace/{importMembers,exportMembers}.json */

/** One line of an import: set a member's flags, or remove it. */
export const importLine = z.union([
  z.object({ did, read: z.boolean(), write: z.boolean() }).strict(),
  z.object({ did, remove: z.literal(true) }).strict(),
])

/** An import's entries (`flags` undefined: remove), from JSON lines; a bad line is a 400 naming it. */
export async function* importEntries(lines: AsyncIterable<{ line: number; value: unknown }>) {
  for await (const { line, value } of lines) {
    const parsed = importLine.safeParse(value)
    if (!parsed.success)
      throw new InvalidRequestError(
        `line ${line}: expected {"did","read","write"} or {"did","remove":true}`,
      )
    const e = parsed.data
    yield { did: e.did, flags: 'remove' in e ? undefined : { read: e.read, write: e.write } }
  }
}

export const importMembers = defineProcedure({
  nsid: 'dev.gatehouse.simplespace.importMembers',
  params: z.object({ space: param.string(spaceRef) }),
  input: undefined,
  inputEncoding: 'application/x-ndjson',
  output: z.object({
    received: z.number().int(),
    changed: z.number().int(),
    unchanged: z.number().int(),
    batches: z.number().int(),
  }),
  errors: ['SpaceNotFound', 'NotSpaceOwner'],
})

export const exportMembers = defineQuery({
  nsid: 'dev.gatehouse.simplespace.exportMembers',
  params: z.object({ space: param.string(spaceRef) }),
  output: z.any(),
  outputEncoding: 'application/x-ndjson',
  errors: ['SpaceNotFound', 'NotSpaceOwner'],
})

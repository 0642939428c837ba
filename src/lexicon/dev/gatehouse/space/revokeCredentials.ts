import { z } from 'zod'
import { defineProcedure } from '../../../method.js'
import { did, spaceRef } from '../../../formats.js'

/** dev.gatehouse.space.revokeCredentials — lexicons/dev/gatehouse/space/revokeCredentials.json */
export const revokeCredentials = defineProcedure({
  nsid: 'dev.gatehouse.space.revokeCredentials',
  input: z
    .object({
      space: spaceRef,
      user: did.optional(),
      clientId: z.string().min(1).max(2048).optional(),
      credentials: z.array(z.string().min(1).max(256)).min(1).max(100).optional(),
    })
    .refine(
      (v) => [v.user, v.clientId, v.credentials].filter((x) => x !== undefined).length === 1,
      'give exactly one of user, clientId, credentials',
    ),
  output: z.object({ revoked: z.number().int() }),
  errors: ['SpaceNotFound', 'NotSpaceOwner'],
})

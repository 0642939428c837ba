import { z } from 'zod'
import { defineProcedure } from '../../../method.js'
import { spaceRef } from '../../../formats.js'
import { joinRequestView } from './defs.js'

/** dev.gatehouse.space.decideJoinRequest — lexicons/dev/gatehouse/space/decideJoinRequest.json */
export const decideJoinRequest = defineProcedure({
  nsid: 'dev.gatehouse.space.decideJoinRequest',
  input: z.object({
    space: spaceRef,
    id: z.string().min(1).max(64),
    decision: z.enum(['approve', 'deny']),
    read: z.boolean().optional(),
    write: z.boolean().optional(),
    reason: z.string().max(1000).optional(),
  }),
  output: joinRequestView,
  errors: ['SpaceNotFound', 'NotSpaceOwner', 'JoinRequestNotFound', 'AlreadyDecided', 'Banned'],
})

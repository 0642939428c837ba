import { z } from 'zod'
import { defineProcedure } from '../../../method.js'
import { spaceRef } from '../../../formats.js'
import { joinRequestView } from './defs.js'

/** dev.gatehouse.space.requestJoin — lexicons/dev/gatehouse/space/requestJoin.json */
export const requestJoin = defineProcedure({
  nsid: 'dev.gatehouse.space.requestJoin',
  input: z.object({ space: spaceRef, message: z.string().max(1000).optional() }),
  output: joinRequestView,
  errors: ['SpaceNotFound', 'JoinRequestsClosed', 'Banned', 'AlreadyMember', 'RateLimitExceeded'],
})

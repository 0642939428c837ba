import { z } from 'zod'
import { defineQuery } from '../../../method.js'
import { spaceRef } from '../../../formats.js'
import { joinRequestView } from './defs.js'

/** dev.gatehouse.space.getJoinRequest — lexicons/dev/gatehouse/space/getJoinRequest.json */
export const getJoinRequest = defineQuery({
  nsid: 'dev.gatehouse.space.getJoinRequest',
  params: z.object({ space: spaceRef }),
  output: joinRequestView,
  errors: ['SpaceNotFound', 'JoinRequestNotFound'],
})

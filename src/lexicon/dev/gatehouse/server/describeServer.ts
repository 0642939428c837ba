import { z } from 'zod'
import { defineQuery } from '../../../../xrpc/method.js'
import { did } from '../../../formats.js'

/** dev.gatehouse.server.describeServer — lexicons/dev/gatehouse/server/describeServer.json */
export const describeServer = defineQuery({
  nsid: 'dev.gatehouse.server.describeServer',
  output: z.object({
    did,
    version: z.string(),
    publicUrl: z.string(),
    wireGeneration: z.string(),
    compatibility: z.array(z.string()),
  }),
})

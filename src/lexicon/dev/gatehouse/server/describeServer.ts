import { z } from 'zod'
import { defineQuery } from '../../../method.js'
import { did, nsid } from '../../../formats.js'

/** dev.gatehouse.server.describeServer — lexicons/dev/gatehouse/server/describeServer.json */

const generation = z.enum(['A', 'C'])

export const methodGenerations = z.object({
  nsid,
  role: z.enum(['served', 'sent']),
  accepts: z.array(generation),
  emits: z.array(generation),
})

export const describeServer = defineQuery({
  nsid: 'dev.gatehouse.server.describeServer',
  output: z.object({
    did,
    version: z.string(),
    publicUrl: z.string(),
    wireGeneration: z.string(),
    compatibility: z.array(z.string()),
    methods: z.array(methodGenerations),
  }),
})

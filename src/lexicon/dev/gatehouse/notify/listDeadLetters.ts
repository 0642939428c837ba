import { z } from 'zod'
import { defineQuery } from '../../../method.js'
import { param, spaceRef, tid } from '../../../formats.js'

/** dev.gatehouse.notify.listDeadLetters — lexicons/dev/gatehouse/notify/listDeadLetters.json */
export const listDeadLetters = defineQuery({
  nsid: 'dev.gatehouse.notify.listDeadLetters',
  params: z.object({
    space: param.string(spaceRef),
    limit: param.integer({ min: 1, max: 1000, default: 100 }),
  }),
  output: z.object({
    deadLetters: z.array(
      z.object({
        id: z.string(),
        service: z.string(),
        spaceRev: tid,
        kind: z.string(),
        attempts: z.number().int(),
        lastError: z.string().optional(),
        credentials: z.array(z.string()).optional(),
        createdAt: z.string(),
      }),
    ),
  }),
  errors: ['SpaceNotFound', 'NotSpaceOwner'],
})

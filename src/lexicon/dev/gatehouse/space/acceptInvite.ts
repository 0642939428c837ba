import { z } from 'zod'
import { defineProcedure } from '../../../method.js'

/** dev.gatehouse.space.acceptInvite — lexicons/dev/gatehouse/space/acceptInvite.json */
export const acceptInvite = defineProcedure({
  nsid: 'dev.gatehouse.space.acceptInvite',
  input: z.object({ code: z.string().min(1).max(100) }),
  output: z.object({ space: z.string(), read: z.boolean(), write: z.boolean() }),
  errors: [
    'InviteNotFound',
    'InviteExpired',
    'InviteRevoked',
    'InviteExhausted',
    'Banned',
    'SpaceNotFound',
  ],
})

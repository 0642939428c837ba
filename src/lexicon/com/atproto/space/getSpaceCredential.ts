import { z } from 'zod'
import { defineProcedure } from '../../../method.js'
import { spaceRef } from '../../../formats.js'

/** com.atproto.space.getSpaceCredential — lexicons/com/atproto/space/getSpaceCredential.json */
export const getSpaceCredential = defineProcedure({
  nsid: 'com.atproto.space.getSpaceCredential',
  input: z.object({
    space: spaceRef,
    clientAttestation: z
      .string()
      .min(1)
      .max(16 * 1024)
      .optional(),
  }),
  output: z.object({ credential: z.string() }),
  errors: [
    'SpaceNotFound',
    'SpaceDeleted',
    'UserNotAuthorized',
    'AppNotAuthorized',
    'NotAuthorized',
    'InvalidDelegationToken',
    'InvalidClientAttestation',
  ],
})

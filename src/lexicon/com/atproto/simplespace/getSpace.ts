import { z } from 'zod'
import { defineQuery } from '../../../method.js'
import { param, spaceRef } from '../../../formats.js'
import { appAccess, userPolicy } from './defs.js'

/** com.atproto.simplespace.getSpace — lexicons/com/atproto/simplespace/getSpace.json */
export const getSpace = defineQuery({
  nsid: 'com.atproto.simplespace.getSpace',
  params: z.object({ space: param.string(spaceRef) }),
  // `policy` is generation A's name for the read policy, sent beside readPolicy for its readers.
  output: z.object({
    uri: z.string(),
    readPolicy: userPolicy,
    writePolicy: userPolicy,
    policy: userPolicy,
    appAccess,
  }),
  errors: ['SpaceNotFound'],
})

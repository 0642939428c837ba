import { z } from 'zod'
import { defineProcedure, defineQuery } from '../../../../xrpc/method.js'
import { did, nsid, param, recordKey, spaceRef } from '../../../formats.js'
import { appAccess, userPolicy } from './defs.js'

/** com.atproto.simplespace management methods — lexicons/com/atproto/simplespace/*.json */

export const createSpace = defineProcedure({
  nsid: 'com.atproto.simplespace.createSpace',
  input: z.object({
    spaceType: nsid,
    skey: recordKey.optional(),
    readPolicy: userPolicy,
    writePolicy: userPolicy,
    appAccess,
  }),
  output: z.object({ uri: spaceRef }),
  errors: ['SpaceAlreadyExists', 'UnsupportedPolicy', 'UnsupportedAppAccess'],
})

export const updateSpace = defineProcedure({
  nsid: 'com.atproto.simplespace.updateSpace',
  input: z.object({
    space: spaceRef,
    readPolicy: userPolicy.optional(),
    writePolicy: userPolicy.optional(),
    appAccess: appAccess.optional(),
  }),
  errors: ['SpaceNotFound', 'NotSpaceOwner', 'UnsupportedPolicy', 'UnsupportedAppAccess'],
})

export const deleteSpace = defineProcedure({
  nsid: 'com.atproto.simplespace.deleteSpace',
  input: z.object({ space: spaceRef }),
  errors: ['SpaceNotFound', 'NotSpaceOwner'],
})

export const putMember = defineProcedure({
  nsid: 'com.atproto.simplespace.putMember',
  input: z.object({ space: spaceRef, did, read: z.boolean(), write: z.boolean() }),
  errors: ['SpaceNotFound', 'NotSpaceOwner'],
})

export const addMember = defineProcedure({
  nsid: 'com.atproto.simplespace.addMember',
  input: z.object({ space: spaceRef, did }),
  errors: ['SpaceNotFound', 'NotSpaceOwner'],
})

export const removeMember = defineProcedure({
  nsid: 'com.atproto.simplespace.removeMember',
  input: z.object({ space: spaceRef, did }),
  errors: ['SpaceNotFound', 'NotSpaceOwner'],
})

export const member = z.object({ did, read: z.boolean(), write: z.boolean() })

export const listMembers = defineQuery({
  nsid: 'com.atproto.simplespace.listMembers',
  params: z.object({
    space: param.string(spaceRef),
    limit: param.integer({ min: 1, max: 1000, default: 100 }),
    cursor: param.string(z.string().min(1).max(2048)).optional(),
  }),
  output: z.object({ members: z.array(member), cursor: z.string().optional() }),
  errors: ['SpaceNotFound'],
})

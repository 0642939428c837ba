import { z } from 'zod'
import { defineProcedure, defineQuery } from '../../../method.js'
import { did, nsid, param, recordKey, spaceRef } from '../../../formats.js'
import { DEFS } from '../../../../policy/codec.js'
import { appAccess, userPolicy } from './defs.js'

/** com.atproto.simplespace management methods — lexicons/com/atproto/simplespace/*.json */

/** createSpace in generation C or A shape (see `createSpaceRequest`); mixing them is refused. */
export const createSpace = defineProcedure({
  nsid: 'com.atproto.simplespace.createSpace',
  input: z
    .object({
      spaceType: nsid.optional(),
      type: nsid.optional(),
      skey: recordKey.optional(),
      readPolicy: userPolicy.optional(),
      writePolicy: userPolicy.optional(),
      policy: userPolicy.optional(),
      appAccess,
    })
    .refine((v) => (v.spaceType === undefined) !== (v.type === undefined), {
      message: 'give spaceType (or, in the generation A shape, type), once',
      path: ['spaceType'],
    })
    .refine(
      (v) =>
        v.policy === undefined
          ? v.readPolicy !== undefined && v.writePolicy !== undefined
          : v.readPolicy === undefined && v.writePolicy === undefined,
      {
        message: 'give readPolicy and writePolicy (or, in the generation A shape, policy alone)',
        path: ['readPolicy'],
      },
    ),
  output: z.object({ uri: spaceRef }),
  errors: ['SpaceAlreadyExists', 'UnsupportedPolicy', 'UnsupportedAppAccess'],
})

/** A's `policy` decided reads and members wrote (reference PDS): writePolicy becomes memberList. */
export function createSpaceRequest(input: z.infer<typeof createSpace.input>) {
  return {
    spaceType: (input.spaceType ?? input.type)!,
    skey: input.skey,
    readPolicy: (input.readPolicy ?? input.policy)!,
    writePolicy: input.writePolicy ?? { $type: `${DEFS}#memberListPolicy` },
    appAccess: input.appAccess,
  }
}

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

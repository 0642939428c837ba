import { z } from 'zod'
import { defineProcedure, defineQuery } from '../../../method.js'
import { bytes, did, param, spaceRef, tid } from '../../../formats.js'

/** Gatehouse's member-list sync methods — lexicons/dev/gatehouse/simplespace/*.json */

export const memberOp = z.object({
  rev: tid,
  op: z.enum(['add', 'update', 'remove']),
  did,
  read: z.boolean(),
  write: z.boolean(),
})

export const listMemberOps = defineQuery({
  nsid: 'dev.gatehouse.simplespace.listMemberOps',
  params: z.object({
    space: param.string(spaceRef),
    since: param.string(tid).optional(),
    limit: param.integer({ min: 1, max: 1000, default: 100 }),
  }),
  output: z.object({
    ops: z.array(memberOp),
    cursor: tid.optional(),
    rev: tid.optional(),
    digest: bytes,
    count: z.number().int(),
  }),
  errors: ['SpaceNotFound', 'NotSpaceOwner', 'OplogCompacted'],
})

export const getMemberState = defineQuery({
  nsid: 'dev.gatehouse.simplespace.getMemberState',
  params: z.object({ space: param.string(spaceRef) }),
  output: z.object({ rev: tid.optional(), digest: bytes.optional(), count: z.number().int() }),
  errors: ['SpaceNotFound', 'NotSpaceOwner'],
})

export const setRosterVisibility = defineProcedure({
  nsid: 'dev.gatehouse.simplespace.setRosterVisibility',
  input: z.object({ space: spaceRef, visibility: z.enum(['owner', 'members', 'count', 'public']) }),
  errors: ['SpaceNotFound', 'NotSpaceOwner'],
})

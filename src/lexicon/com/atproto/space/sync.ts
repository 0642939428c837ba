import { z } from 'zod'
import { defineProcedure, defineQuery } from '../../../../xrpc/method.js'
import { bytes, datetime, did, param, spaceRef, tid } from '../../../formats.js'

/** com.atproto.space notifyWrite, listRepos, registerNotify, unregisterNotify (generation C). */

export const notifyWrite = defineProcedure({
  nsid: 'com.atproto.space.notifyWrite',
  input: z.object({
    space: spaceRef,
    repo: did,
    repoRev: tid,
    hash: bytes,
    spaceRev: tid.optional(),
    prevSpaceRev: tid.optional(),
  }),
  errors: ['SpaceNotFound', 'FutureRev'],
})

export const repo = z.object({ did, repoRev: tid, hash: bytes, spaceRev: tid })

export const listRepos = defineQuery({
  nsid: 'com.atproto.space.listRepos',
  params: z.object({
    space: param.string(spaceRef),
    limit: param.integer({ min: 1, max: 1000, default: 100 }),
    cursor: param.string(tid).optional(),
  }),
  output: z.object({ repos: z.array(repo), cursor: tid.optional() }),
  errors: ['SpaceNotFound'],
})

const serviceId = z
  .string()
  .min(1)
  .max(2048)
  .regex(/^did:[a-z]+:[^\s#]+(#[^\s#]+)?$/, 'must be a service identifier')

export const registerNotify = defineProcedure({
  nsid: 'com.atproto.space.registerNotify',
  input: z.object({ space: spaceRef, service: serviceId }),
  output: z.object({ expiresAt: datetime }),
  errors: ['SpaceNotFound', 'ServiceNotResolvable'],
})

export const unregisterNotify = defineProcedure({
  nsid: 'com.atproto.space.unregisterNotify',
  input: z.object({ space: spaceRef, service: serviceId }),
  errors: ['SpaceNotFound'],
})

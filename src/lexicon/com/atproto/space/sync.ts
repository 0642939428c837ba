import { z } from 'zod'
import { defineProcedure, defineQuery } from '../../../method.js'
import { bytes, datetime, did, param, spaceRef, tid } from '../../../formats.js'

/** Generation C sync methods; A says `rev` for `repoRev`: both read, both sent (must agree). */

export const notifyWrite = defineProcedure({
  nsid: 'com.atproto.space.notifyWrite',
  input: z
    .object({
      space: spaceRef,
      repo: did,
      repoRev: tid.optional(),
      rev: tid.optional(),
      hash: bytes,
      spaceRev: tid.optional(),
      prevSpaceRev: tid.optional(),
    })
    .refine((v) => v.repoRev !== undefined || v.rev !== undefined, {
      message: 'repoRev (or, from a generation A repo host, rev) is required',
      path: ['repoRev'],
    })
    .refine((v) => v.repoRev === undefined || v.rev === undefined || v.repoRev === v.rev, {
      message: 'rev and repoRev name the same revision and must agree',
      path: ['rev'],
    }),
  errors: ['SpaceNotFound', 'FutureRev'],
})

/** The writer's revision of a checked notifyWrite body, whichever generation named it. */
export const writeRevOf = (input: { repoRev?: string; rev?: string }): string =>
  (input.repoRev ?? input.rev)!

/** A writer-set row: `rev` (generation A) repeats `repoRev` (generation C). */
export const repo = z.object({ did, repoRev: tid, rev: tid, hash: bytes, spaceRev: tid })

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
  errors: ['SpaceNotFound', 'ServiceNotResolvable', 'RegistrationLimitExceeded'],
})

export const unregisterNotify = defineProcedure({
  nsid: 'com.atproto.space.unregisterNotify',
  input: z.object({ space: spaceRef, service: serviceId }),
  errors: ['SpaceNotFound'],
})

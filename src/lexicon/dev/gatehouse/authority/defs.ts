import { z } from 'zod'
import { defineProcedure, defineQuery } from '../../../method.js'
import { did } from '../../../formats.js'

/** dev.gatehouse.authority.* (lexicons/dev/gatehouse/authority/*.json): the authority DIDs' life. */

const didKey = z.string().regex(/^did:key:z[1-9A-HJ-NP-Za-km-z]+$/, 'must be a did:key')
const handle = z
  .string()
  .max(253)
  .regex(
    /^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/,
    'must be a handle',
  )

const keyView = z.object({
  id: z.string(),
  purpose: z.enum(['atproto', 'atproto_space', 'rotation']),
  status: z.enum(['active', 'pending', 'retired']),
  publicKey: z.string(),
  createdAt: z.string(),
  retiredAt: z.string().optional(),
})

export const authorityView = z.object({
  did: z.string(),
  status: z.enum(['pending', 'active', 'deactivated', 'transferred']),
  origin: z.enum(['created', 'adopted', 'registered']),
  handle: z.string().optional(),
  ownerRotationKey: z.string().optional(),
  pdsService: z.boolean(),
  createdAt: z.string(),
  updatedAt: z.string(),
  keys: z.array(keyView),
})

const LIFECYCLE_ERRORS = [
  'AuthorityNotFound',
  'InvalidAuthorityState',
  'PlcRefused',
  'NotSpaceOwner',
] as const
const byDid = z.object({ did })

export const createAuthority = defineProcedure({
  nsid: 'dev.gatehouse.authority.createAuthority',
  input: z
    .object({
      method: z.enum(['plc', 'web']),
      did: did.optional(),
      handle: handle.optional(),
      ownerRotationKey: didKey.optional(),
      separateSpaceKey: z.boolean().optional(),
      pdsService: z.boolean().optional(),
    })
    .refine((v) => (v.method === 'web') === (v.did !== undefined), {
      message: 'a did:web authority names its did; a did:plc one is given its DID by the directory',
    })
    .refine((v) => v.method === 'plc' || v.ownerRotationKey === undefined, {
      message: 'ownerRotationKey is for did:plc only',
    }),
  output: authorityView,
  errors: ['AuthorityExists', 'DidNotServed', 'PlcRefused'],
})

export const adoptAuthority = defineProcedure({
  nsid: 'dev.gatehouse.authority.adoptAuthority',
  input: z.object({
    did: did.refine(
      (d) => d.startsWith('did:plc:') || d.startsWith('did:web:'),
      'must be did:plc or did:web',
    ),
    signing: z.enum(['atproto', 'atproto_space']).optional(),
    pdsService: z.boolean().optional(),
  }),
  output: z.object({
    authority: authorityView,
    plcOperation: z.record(z.string(), z.unknown()).optional(),
    didDocument: z.record(z.string(), z.unknown()).optional(),
  }),
  errors: ['AuthorityExists', 'InvalidAuthorityState', 'PlcRefused'],
})

export const activateAuthority = defineProcedure({
  nsid: 'dev.gatehouse.authority.activateAuthority',
  input: byDid,
  output: authorityView,
  errors: [...LIFECYCLE_ERRORS, 'DocumentNotPublished'],
})

export const deactivateAuthority = defineProcedure({
  nsid: 'dev.gatehouse.authority.deactivateAuthority',
  input: byDid,
  output: authorityView,
  errors: LIFECYCLE_ERRORS,
})

export const updateAuthority = defineProcedure({
  nsid: 'dev.gatehouse.authority.updateAuthority',
  input: z.object({ did, pdsService: z.boolean().optional() }),
  output: authorityView,
  errors: LIFECYCLE_ERRORS,
})

export const rotateSigningKey = defineProcedure({
  nsid: 'dev.gatehouse.authority.rotateSigningKey',
  input: z.object({ did, purpose: z.enum(['atproto', 'atproto_space']).optional() }),
  output: authorityView,
  errors: LIFECYCLE_ERRORS,
})

export const rotateRotationKeys = defineProcedure({
  nsid: 'dev.gatehouse.authority.rotateRotationKeys',
  input: z
    .object({
      did,
      ownerRotationKey: didKey.optional(),
      removeOwnerRotationKey: z.boolean().optional(),
    })
    .refine((v) => !(v.ownerRotationKey && v.removeOwnerRotationKey), {
      message: 'give ownerRotationKey or removeOwnerRotationKey, not both',
    }),
  output: authorityView,
  errors: LIFECYCLE_ERRORS,
})

export const transferAuthority = defineProcedure({
  nsid: 'dev.gatehouse.authority.transferAuthority',
  input: z.object({
    did,
    rotationKeys: z.array(didKey).min(1).max(5).optional(),
    verificationMethods: z.record(z.string().regex(/^[a-z_]{1,32}$/), didKey).optional(),
    services: z
      .record(
        z.string().regex(/^[a-z_]{1,32}$/),
        z.object({ type: z.string().min(1).max(64), endpoint: z.url() }),
      )
      .optional(),
  }),
  output: authorityView,
  errors: LIFECYCLE_ERRORS,
})

export const getAuthority = defineQuery({
  nsid: 'dev.gatehouse.authority.getAuthority',
  params: byDid,
  output: authorityView,
  errors: ['AuthorityNotFound', 'NotSpaceOwner'],
})

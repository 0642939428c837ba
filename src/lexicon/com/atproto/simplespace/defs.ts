import { z } from 'zod'

/** com.atproto.simplespace.defs (+ dev.gatehouse.simplespace.defs#denyList): the policy unions as open objects. */
const union = z.object({ $type: z.string() }).loose()
export const userPolicy = union
export const appAccess = union

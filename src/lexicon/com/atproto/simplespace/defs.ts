import { z } from 'zod'

/** com.atproto.simplespace.defs (+ dev.gatehouse.simplespace.defs#denyList): the policy unions as open objects. */
/** Any object: an unknown `$type` is the codec's to refuse by name (UnsupportedPolicy/AppAccess). */
const union = z.object({ $type: z.string().optional() }).loose()
export const userPolicy = union
export const appAccess = union

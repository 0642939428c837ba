import { z } from 'zod'

/** com.atproto.simplespace.defs (+ dev.gatehouse.simplespace.defs#denyList): the policy unions as open objects. */
/**
 * Any object passes here: which `$type`s are understood is the policy codec's question, so an
 * unknown or missing one is answered `UnsupportedPolicy` / `UnsupportedAppAccess` by name rather
 * than as a schema error.
 */
const union = z.object({ $type: z.string().optional() }).loose()
export const userPolicy = union
export const appAccess = union

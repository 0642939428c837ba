import { appAccessFromLex, PolicyCodecError, userPolicyFromLex } from '../../../../policy/codec.js'
import type { SpacePolicy } from '../../../../policy/types.js'

type Fail = (error: 'UnsupportedPolicy' | 'UnsupportedAppAccess', message: string) => Error

/** Decodes the policy unions of createSpace/updateSpace, refusing unsupported variants by name. */
export function decodePolicy(
  input: { readPolicy?: unknown; writePolicy?: unknown; appAccess?: unknown },
  fail: Fail,
): Partial<SpacePolicy> {
  try {
    const out: Partial<SpacePolicy> = {}
    if (input.readPolicy !== undefined) out.readPolicy = userPolicyFromLex(input.readPolicy)
    if (input.writePolicy !== undefined) out.writePolicy = userPolicyFromLex(input.writePolicy)
    if (input.appAccess !== undefined) out.appAccess = appAccessFromLex(input.appAccess)
    return out
  } catch (err) {
    if (err instanceof PolicyCodecError) throw fail(err.error, err.message)
    throw err
  }
}

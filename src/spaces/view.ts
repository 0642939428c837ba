import type { AppContext } from '../context.js'
import { appAccessToLex, userPolicyToLex } from '../policy/codec.js'
import type { SpaceConfig } from '../policy/types.js'

/** A space as operators and managers see it (CLI and REST): its policy in lexicon form, its size. */
export async function spaceView(ctx: AppContext, c: SpaceConfig) {
  return {
    uri: c.uri,
    readPolicy: userPolicyToLex(c.readPolicy),
    writePolicy: userPolicyToLex(c.writePolicy),
    appAccess: appAccessToLex(c.appAccess),
    credentialTtlSec: c.credentialTtlSec,
    dpopCredentialTtlSec: c.dpopCredentialTtlSec,
    rosterVisibility: c.rosterVisibility,
    members: (await ctx.spaces.members.state(c.uri)).count,
    createdAt: c.createdAt.toISOString(),
  }
}

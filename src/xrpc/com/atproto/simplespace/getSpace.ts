import { spaceAuthority } from '../../../../lexicon/formats.js'
import { getHostedSpace } from '../../../../spaces/hosted.js'
import { assertCredentialFor } from '../../../../auth/credential-scope.js'
import { assertManager } from '../../../../auth/managers.js'
import { InvalidRequestError } from '../../../../errors.js'
import { getSpace } from '../../../../lexicon/com/atproto/simplespace/getSpace.js'
import { appAccessToLex, userPolicyToLex } from '../../../../policy/codec.js'
import type { XrpcRouter } from '../../../method.js'

/** A space's configuration, for its credential holders and managers: all of it (contract §4.7 item 6). */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(getSpace, {
    auth: ctx.auth.credentialOrService(getSpace.nsid),
    handler: async ({ params, auth }) => {
      const authority = spaceAuthority(params.space)
      if (auth.type === 'service_auth') {
        await assertManager(ctx, auth, authority, 'read')
      } else {
        assertCredentialFor(auth, params.space)
      }
      const c = await getHostedSpace(ctx, params.space)
      const readPolicy = userPolicyToLex(c.readPolicy)
      return {
        uri: c.uri,
        readPolicy,
        writePolicy: userPolicyToLex(c.writePolicy),
        policy: readPolicy,
        appAccess: appAccessToLex(c.appAccess),
      }
    },
  })
}

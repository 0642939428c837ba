import { getHostedSpace } from '../../../../spaces/hosted.js'
import { toBytesJson } from '../../../../lexicon/formats.js'
import { assertCredentialFor } from '../../../../auth/credential-scope.js'
import { listRepos } from '../../../../lexicon/com/atproto/space/sync.js'
import type { XrpcRouter } from '../../../method.js'

/** The writer set in spaceRev order after `cursor` (contract §1.2); an empty page has no cursor. */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(listRepos, {
    auth: ctx.auth.spaceCredential(),
    handler: async ({ params, auth }) => {
      assertCredentialFor(auth, params.space)
      await getHostedSpace(ctx, params.space)
      const rows = await ctx.notify.listWriters(params.space, params.limit, params.cursor)
      const repos = rows.map((r) => ({
        did: r.did,
        repoRev: r.repoRev,
        rev: r.repoRev,
        hash: toBytesJson(r.hash),
        spaceRev: r.spaceRev,
      }))
      const last = repos[repos.length - 1]
      return { repos, ...(last ? { cursor: last.spaceRev } : {}) }
    },
  })
}

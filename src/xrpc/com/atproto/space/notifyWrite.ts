import { isAddressedTo } from '../../../../auth/audience.js'
import { spaceAuthority } from '../../../../lexicon/formats.js'
import { activeConfig, lookupHostedSpace } from '../../../../spaces/hosted.js'
import { decodeTid } from '../../../../spaces/tid.js'
import { ForbiddenError } from '../../../../errors.js'
import { notifyWrite, writeRevOf } from '../../../../lexicon/com/atproto/space/sync.js'
import { authorizeUser } from '../../../../policy/authorize.js'
import type { XrpcRouter } from '../../../method.js'

/** A repo's rev may run at most this far ahead of our clock (contract §1.5: FutureRev). */
export const FUTURE_REV_WINDOW_MS = 5 * 60_000

/** The host of the repo's PDS (its DID document is cached: service auth just read it). */
async function repoHost(ctx: XrpcRouter['context'], repo: string): Promise<string | undefined> {
  try {
    return new URL(await ctx.idResolver.resolveServiceEndpoint(repo)).host
  } catch {
    return undefined // no PDS named: the per-address limit still applies
  }
}

/**
 * A repo host says its repo advanced (contract §1.5), in the contract's order: body (a bad repoRev
 * is a 400 before auth), service auth, `iss` = writer, `aud` = authority, FutureRev, active space,
 * write perimeter. Only transient trouble is 5xx: repo hosts retry that for 24 h and drop the rest.
 */
export default function (router: XrpcRouter, ctx = router.context): void {
  router.add(notifyWrite, {
    auth: ctx.auth.serviceAuth(notifyWrite.nsid),
    authAfterInput: true,
    handler: async ({ input, auth, fail, limit }) => {
      const authority = spaceAuthority(input.space)
      const repoRev = writeRevOf(input)
      if (auth.iss !== input.repo)
        throw new ForbiddenError('notifyWrite iss does not match claimed writer')
      await limit('notifyPerRepo', input.repo)
      // Addressed to the space's authority, never to Gatehouse's own DID.
      if (!isAddressedTo(auth.aud, authority)) {
        throw new ForbiddenError('notifyWrite aud does not match the space authority')
      }
      const found = await lookupHostedSpace(ctx, input.space)
      if (found.state === 'foreign') throw fail('SpaceNotFound', 'Space not found')
      if (Number(decodeTid(repoRev).micros / 1000n) > ctx.clock.nowMs() + FUTURE_REV_WINDOW_MS) {
        throw fail('FutureRev', 'repoRev is too far in the future')
      }
      // The write perimeter: no app check, since a PDS has no client attestation.
      if (!(await authorizeUser(activeConfig(found), input.repo, 'write', ctx.policyDeps))) {
        throw new ForbiddenError('notifyWrite writer is not authorized')
      }
      // The host is only what the repo's DID document claims: counted once the repo is a writer
      // here, so a DID of anyone's naming a busy PDS cannot spend that PDS's share.
      const host = await repoHost(ctx, input.repo)
      if (host) await limit('notifyPerRepoHost', host)
      await ctx.notify.acceptWrite(input.space, {
        repo: input.repo,
        repoRev,
        hash: new Uint8Array(Buffer.from(input.hash.$bytes, 'base64')),
      })
      return undefined
    },
  })
}

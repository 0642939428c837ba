import { describeServer } from '../../../../lexicon/dev/gatehouse/server/describeServer.js'
import type { XrpcRouter } from '../../../method.js'

/** Who this host is and which wire generation it speaks. Public, unauthenticated. */
export default function (router: XrpcRouter): void {
  router.add(describeServer, {
    handler: async ({ ctx }) => ({
      did: ctx.identity.did,
      version: ctx.cfg.service.version,
      publicUrl: ctx.cfg.service.publicUrl,
      wireGeneration: 'C',
      compatibility: ['A'],
    }),
  })
}

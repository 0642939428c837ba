import {
  describeServer,
  type methodGenerations,
} from '../../../../lexicon/dev/gatehouse/server/describeServer.js'
import type { z } from 'zod'
import type { XrpcRouter } from '../../../method.js'

const BOTH = ['A', 'C'] as const
const row = (
  nsid: string,
  role: 'served' | 'sent',
  accepts: readonly ('A' | 'C')[],
  emits: readonly ('A' | 'C')[] = accepts,
): z.infer<typeof methodGenerations> => ({ nsid, role, accepts: [...accepts], emits: [...emits] })

/** Generations per method: we send both shapes where schemas allow and read either. */
export const METHOD_GENERATIONS = [
  row('com.atproto.space.getSpaceCredential', 'served', BOTH),
  row('com.atproto.space.listRepos', 'served', BOTH),
  row('com.atproto.space.registerNotify', 'served', BOTH),
  row('com.atproto.space.unregisterNotify', 'served', BOTH),
  row('com.atproto.space.notifyWrite', 'served', BOTH),
  row('com.atproto.simplespace.getSpace', 'served', BOTH),
  row('com.atproto.simplespace.createSpace', 'served', BOTH),
  row('com.atproto.simplespace.updateSpace', 'served', ['C']),
  row('com.atproto.simplespace.deleteSpace', 'served', BOTH),
  row('com.atproto.simplespace.putMember', 'served', ['C']),
  row('com.atproto.simplespace.addMember', 'served', ['A']),
  row('com.atproto.simplespace.removeMember', 'served', BOTH),
  row('com.atproto.simplespace.listMembers', 'served', BOTH),
  row('com.atproto.space.notifyWrite', 'sent', BOTH),
  row('com.atproto.space.notifySpaceDeleted', 'sent', BOTH),
  row('com.atproto.space.notifyCredentialRevoked', 'sent', ['C']),
  row('com.atproto.simplespace.checkUserAccess', 'sent', BOTH),
]

/** Who this host is and which wire generations it speaks, per method. Public, unauthenticated. */
export default function (router: XrpcRouter): void {
  router.add(describeServer, {
    handler: async ({ ctx }) => ({
      did: ctx.identity.did,
      version: ctx.cfg.service.version,
      publicUrl: ctx.cfg.service.publicUrl,
      wireGeneration: 'C',
      compatibility: ['A'],
      methods: METHOD_GENERATIONS,
    }),
  })
}

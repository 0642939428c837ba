import { z } from 'zod'
import type { JoinRequestView } from '../../../../spaces/admission.js'

/** A join request as its requester sees it (requestJoin, getJoinRequest): never who decided. */
export const joinRequestView = z.object({
  id: z.string(),
  space: z.string(),
  did: z.string(),
  message: z.string().optional(),
  status: z.enum(['pending', 'approved', 'denied']),
  read: z.boolean(),
  write: z.boolean(),
  reason: z.string().optional(),
  createdAt: z.string(),
  decidedAt: z.string().optional(),
})

export function joinRequestOut(r: JoinRequestView): z.input<typeof joinRequestView> {
  return {
    id: r.id,
    space: r.space,
    did: r.did,
    ...(r.message !== null ? { message: r.message } : {}),
    status: r.status,
    read: r.read,
    write: r.write,
    ...(r.reason !== null ? { reason: r.reason } : {}),
    createdAt: r.createdAt.toISOString(),
    ...(r.decidedAt ? { decidedAt: r.decidedAt.toISOString() } : {}),
  }
}

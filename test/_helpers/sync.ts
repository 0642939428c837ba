import { encodeTid } from '../../src/spaces/tid.js'
import type { WebIdentity } from './identities.js'
import type { SpaceWorld } from './spaces.js'
import { serviceJwt } from './tokens.js'

/** What a member's repo host does: notifyWrite to the authority, with service auth from the writer. */

const LXM = 'com.atproto.space.notifyWrite'
export const tidAt = (ms: number, clock = 0) => encodeTid(BigInt(ms) * 1000n, clock)
export const HASH = { $bytes: Buffer.alloc(32, 7).toString('base64').replace(/=+$/, '') }

export function notifier(w: SpaceWorld) {
  return async (
    writer: WebIdentity,
    body: Record<string, unknown>,
    jwt: { aud?: string; lxm?: string; iss?: WebIdentity } = {},
  ) => {
    const token = serviceJwt({
      iss: jwt.iss ?? writer,
      aud: jwt.aud ?? `${w.authority.did}#atproto_space_host`,
      lxm: jwt.lxm ?? LXM,
      nowSec: w.now(),
    })
    const res = await w.a.fetch(`/xrpc/${LXM}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ space: w.space, repo: writer.did, hash: HASH, ...body }),
    })
    const text = await res.text()
    return {
      status: res.status,
      body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined,
    }
  }
}

/** dev.gatehouse.notify.listDeadLetters for the world's space, called as a new owner of its authority. */
export async function listDeadLetters(w: SpaceWorld): Promise<unknown> {
  const owner = w.user('owner')
  await w.a.ctx.managers.change(w.authority.did, owner.did, 'owner', 'operator')
  const nsid = 'dev.gatehouse.notify.listDeadLetters'
  const res = await w.a.fetch(`/xrpc/${nsid}?${new URLSearchParams({ space: w.space })}`, {
    headers: {
      authorization: `Bearer ${serviceJwt({ iss: owner, aud: w.authority.did, lxm: nsid, nowSec: w.now() })}`,
    },
  })
  return res.json()
}

import type { TestLike } from './arbiter.js'
import { encodeTid } from '../../src/spaces/tid.js'
import { MockService } from './services.js'
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

/**
 * A notifyWrite from `writer` posted to the Gatehouse at `url` (a `gatehouse serve` child, on the
 * real clock), signed as its repo host would; the HTTP status and the body of a refusal.
 */
export async function postNotifyWrite(
  url: string,
  o: { authority: string; space: string; writer: WebIdentity; repoRev: string },
): Promise<{ status: number; body?: { error?: string; message?: string } }> {
  const jwt = serviceJwt({
    iss: o.writer,
    aud: `${o.authority}#atproto_space_host`,
    lxm: LXM,
    nowSec: Math.floor(Date.now() / 1000),
  })
  const res = await fetch(`${url}/xrpc/${LXM}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' },
    body: JSON.stringify({ space: o.space, repo: o.writer.did, repoRev: o.repoRev, hash: HASH }),
  })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : undefined }
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

/**
 * A syncer on a real loopback server, registered for the world's space for a day (by `by`, the
 * syncer itself by default); `answer` gives each notification's status.
 */
export async function registeredSyncer(
  t: TestLike,
  w: SpaceWorld,
  answer: (path: string) => number,
  by?: string,
): Promise<{ svc: MockService; service: string }> {
  const svc = await MockService.start(t, (req, res) => svc.json(res, answer(req.path), {}))
  const id = w.web.create('syncer', {
    services: { atproto_space_syncer: { type: 'AtprotoSpaceSyncer', endpoint: svc.origin } },
  })
  const service = `${id.did}#atproto_space_syncer`
  const expires = new Date(w.a.clock.nowMs() + 86_400_000)
  await w.a.ctx.notify.register(w.space, service, svc.origin, expires, by ?? id.did)
  return { svc, service }
}

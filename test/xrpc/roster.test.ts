/**
 * Roster visibility per space — owner (default), members, count, public — for every kind of caller
 * (manager, managing app, credential holder, anonymous, a stranger with service auth) and every read
 * of the member list (listMembers, listMemberOps, getMemberState).
 */
import t from 'tap'
import type { RosterVisibility } from '../../src/policy/types.js'
import { getHostedSpace } from '../../src/spaces/hosted.js'
import { spaceWorld } from '../_helpers/spaces.js'
import { presentHeaders, serviceJwt } from '../_helpers/tokens.js'

type Who = 'manager' | 'app' | 'holder' | 'anonymous' | 'stranger'
const METHODS = [
  'com.atproto.simplespace.listMembers',
  'dev.gatehouse.simplespace.listMemberOps',
  'dev.gatehouse.simplespace.getMemberState',
] as const

/** What each caller gets: 'full', 'count' (getMemberState: the count only), or an error name. */
function expected(v: RosterVisibility, who: Who, method: (typeof METHODS)[number]): string {
  if (who === 'manager' || who === 'app') return 'full'
  const full = v === 'public' || (v === 'members' && who === 'holder')
  if (full) return 'full'
  if (v === 'count' && method.endsWith('getMemberState')) return 'count'
  return who === 'anonymous' ? 'AuthenticationRequired' : 'NotSpaceOwner'
}

t.test('every visibility × caller × read', async (t) => {
  const w = await spaceWorld(t)
  const manager = w.user('manager')
  await w.a.ctx.managers.change(w.authority.did, manager.did, 'moderator', 'operator')
  const app = w.web.create('the-app')
  await w.a.ctx.manager.updatePolicy(w.space, {
    writePolicy: { kind: 'managing-app', managingApp: `${app.did}#forum` },
  })
  const holder = w.user('holder')
  await w.a.ctx.spaces.putMember(w.space, holder.did, { read: true, write: true })
  const cred = await w.getCredential(holder)
  t.equal(cred.status, 200)
  const stranger = w.user('stranger')

  const headersFor = (who: Who, nsid: string): Record<string, string> => {
    if (who === 'anonymous') return {}
    if (who === 'holder')
      return presentHeaders(cred.body.credential as string, w.authority.did, cred.holder)
    const iss = who === 'manager' ? manager : who === 'app' ? app : stranger
    return {
      authorization: `Bearer ${serviceJwt({ iss, aud: w.authority.did, lxm: nsid, nowSec: w.now() })}`,
    }
  }

  for (const v of ['owner', 'members', 'count', 'public'] as const) {
    await w.a.ctx.spaces.setRosterVisibility(w.space, v)
    for (const who of ['manager', 'app', 'holder', 'anonymous', 'stranger'] as const) {
      for (const nsid of METHODS) {
        const res = await w.a.fetch(`/xrpc/${nsid}?${new URLSearchParams({ space: w.space })}`, {
          headers: headersFor(who, nsid),
        })
        const body = (await res.json()) as Record<string, unknown>
        const want = expected(v, who, nsid)
        const label = `${v} / ${who} / ${nsid.split('.').pop()}`
        if (want === 'full') {
          t.equal(res.status, 200, label)
          if (nsid.endsWith('getMemberState'))
            t.ok(body.digest && body.rev, `${label}: digest and rev`)
          if (nsid.endsWith('listMembers'))
            t.same(body.members, [{ did: holder.did, read: true, write: true }], label)
        } else if (want === 'count') {
          t.same({ status: res.status, body }, { status: 200, body: { count: 1 } }, label)
        } else {
          t.match(
            { status: res.status, body },
            { status: want === 'AuthenticationRequired' ? 401 : 400, body: { error: want } },
            label,
          )
        }
      }
    }
  }
})

t.test('anonymous callers cannot probe which non-public spaces exist', async (t) => {
  const w = await spaceWorld(t)
  for (const space of [w.space, w.space.replace(/[^/]+$/, 'no-such-space')]) {
    const res = await w.a.fetch(
      `/xrpc/com.atproto.simplespace.listMembers?${new URLSearchParams({ space })}`,
    )
    t.match(
      { status: res.status, body: await res.json() },
      { status: 401, body: { error: 'AuthenticationRequired' } },
      space,
    )
  }
})

t.test('setRosterVisibility: admins only, real spaces only', async (t) => {
  const w = await spaceWorld(t)
  const admin = w.user('admin')
  const moderator = w.user('mod')
  await w.a.ctx.managers.change(w.authority.did, admin.did, 'admin', 'operator')
  await w.a.ctx.managers.change(w.authority.did, moderator.did, 'moderator', 'operator')
  const nsid = 'dev.gatehouse.simplespace.setRosterVisibility'
  const set = async (who: typeof admin, body: unknown) => {
    const res = await w.a.fetch(`/xrpc/${nsid}`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${serviceJwt({ iss: who, aud: w.authority.did, lxm: nsid, nowSec: w.now() })}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify(body),
    })
    return { status: res.status, body: res.status === 200 ? {} : await res.json() }
  }
  t.equal((await set(admin, { space: w.space, visibility: 'public' })).status, 200)
  t.equal((await getHostedSpace(w.a.ctx, w.space)).rosterVisibility, 'public')
  t.match(await set(moderator, { space: w.space, visibility: 'owner' }), {
    status: 400,
    body: { error: 'NotSpaceOwner' },
  })
  t.match(await set(admin, { space: w.space, visibility: 'secret' }), {
    status: 400,
    body: { error: 'InvalidRequest' },
  })
  t.match(await set(admin, { space: w.space.replace(/[^/]+$/, 'gone'), visibility: 'public' }), {
    status: 400,
    body: { error: 'SpaceNotFound' },
  })
})

t.test('listMembers sends a cursor only while another page follows', async (t) => {
  const w = await spaceWorld(t)
  const manager = w.user('manager')
  await w.a.ctx.managers.change(w.authority.did, manager.did, 'moderator', 'operator')
  const nsid = 'com.atproto.simplespace.listMembers'
  const page = async (limit: number, cursor?: string) => {
    const q = new URLSearchParams({ space: w.space, limit: String(limit) })
    if (cursor) q.set('cursor', cursor)
    const res = await w.a.fetch(`/xrpc/${nsid}?${q}`, {
      headers: {
        authorization: `Bearer ${serviceJwt({ iss: manager, aud: w.authority.did, lxm: nsid, nowSec: w.now() })}`,
      },
    })
    t.equal(res.status, 200)
    return (await res.json()) as { members: { did: string }[]; cursor?: string }
  }
  const dids = [1, 2, 3, 4].map((i) => `did:plc:${String(i).padStart(24, 'm')}`)
  for (const did of dids) await w.a.ctx.spaces.putMember(w.space, did, { read: true, write: true })

  const first = await page(3)
  t.same(
    first.members.map((m) => m.did),
    dids.slice(0, 3),
  )
  t.equal(first.cursor, dids[2], 'more follow: the cursor is the last DID of the page')
  const last = await page(3, first.cursor)
  t.same(
    last.members.map((m) => m.did),
    dids.slice(3),
  )
  t.notOk('cursor' in last, 'a short last page has no cursor')

  const exact = await page(2, dids[1])
  t.same(
    exact.members.map((m) => m.did),
    dids.slice(2),
  )
  t.notOk('cursor' in exact, 'a last page that is exactly full has no cursor either')
  t.same(await page(4), { members: dids.map((did) => ({ did, read: true, write: true })) })
})

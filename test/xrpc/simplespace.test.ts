/**
 * Space management over HTTP with service auth: managers by role, the space's managing app for
 * member operations, everyone else refused. createSpace names its authority by the service-auth
 * audience. Deletion tombstones; the member oplog and state let a mirror replay and verify the list.
 */
import t from 'tap'
import { LtHash } from '../../src/crypto/lthash.js'
import { memberElement } from '../../src/members/member-list.js'
import { spaceWorld, type SpaceWorld } from '../_helpers/spaces.js'
import { serviceJwt } from '../_helpers/tokens.js'
import type { WebIdentity } from '../_helpers/identities.js'

const D = 'com.atproto.simplespace.defs'
const members = {
  readPolicy: { $type: `${D}#memberListPolicy` },
  writePolicy: { $type: `${D}#memberListPolicy` },
  appAccess: { $type: `${D}#open` },
}

function caller(w: SpaceWorld) {
  return async (
    nsid: string,
    who: WebIdentity,
    payload: Record<string, unknown>,
    opts: { aud?: string; query?: boolean } = {},
  ) => {
    const jwt = serviceJwt({
      iss: who,
      aud: opts.aud ?? w.authority.did,
      lxm: nsid,
      nowSec: w.now(),
    })
    const headers: Record<string, string> = { authorization: `Bearer ${jwt}` }
    const res = opts.query
      ? await w.a.fetch(`/xrpc/${nsid}?${new URLSearchParams(payload as Record<string, string>)}`, {
          headers,
        })
      : await w.a.fetch(`/xrpc/${nsid}`, {
          method: 'POST',
          headers: { ...headers, 'content-type': 'application/json' },
          body: JSON.stringify(payload),
        })
    const text = await res.text()
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as Record<string, any> }
  }
}

async function setup(t: Parameters<typeof spaceWorld>[0]) {
  const w = await spaceWorld(t)
  const owner = w.user('owner')
  const moderator = w.user('moderator')
  await w.a.ctx.managers.change(w.authority.did, owner.did, 'owner', 'operator')
  await w.a.ctx.managers.change(w.authority.did, moderator.did, 'moderator', 'operator')
  return { w, owner, moderator, call: caller(w) }
}

t.test(
  'createSpace: addressed to the authority; TID skey by default; conflicts and bad policies refused',
  async (t) => {
    const { w, owner, moderator, call } = await setup(t)
    const made = await call('com.atproto.simplespace.createSpace', owner, {
      spaceType: 'com.example.chat',
      skey: 'lobby',
      ...members,
    })
    t.same(made, {
      status: 200,
      body: { uri: `at://${w.authority.did}/space/com.example.chat/lobby` },
    })
    const viaHost = await call(
      'com.atproto.simplespace.createSpace',
      owner,
      { spaceType: 'com.example.chat', ...members },
      { aud: `${w.authority.did}#atproto_space_host` },
    )
    t.match(
      viaHost.body.uri,
      new RegExp(`^at://${w.authority.did}/space/com.example.chat/[2-7a-z]{13}$`),
    )
    t.match(
      await call('com.atproto.simplespace.createSpace', owner, {
        spaceType: 'com.example.chat',
        skey: 'lobby',
        ...members,
      }),
      { status: 400, body: { error: 'SpaceAlreadyExists' } },
    )
    t.match(
      await call('com.atproto.simplespace.createSpace', owner, {
        spaceType: 'com.example.chat',
        ...members,
        readPolicy: { $type: `${D}#everyone` },
      }),
      { status: 400, body: { error: 'UnsupportedPolicy' } },
    )
    t.match(
      await call('com.atproto.simplespace.createSpace', owner, {
        spaceType: 'com.example.chat',
        ...members,
        appAccess: { $type: `${D}#nobody` },
      }),
      { status: 400, body: { error: 'UnsupportedAppAccess' } },
    )
    t.match(
      await call('com.atproto.simplespace.createSpace', moderator, {
        spaceType: 'com.example.chat',
        ...members,
      }),
      { status: 400, body: { error: 'NotSpaceOwner' } },
      'moderators cannot create',
    )
    t.match(
      await call('com.atproto.simplespace.createSpace', w.user('nobody'), {
        spaceType: 'com.example.chat',
        ...members,
      }),
      { status: 400, body: { error: 'NotSpaceOwner' } },
    )
    t.match(
      await call(
        'com.atproto.simplespace.createSpace',
        owner,
        { spaceType: 'com.example.chat', ...members },
        { aud: w.a.ctx.identity.did },
      ),
      { status: 403, body: { error: 'Forbidden' } },
      'which authority? the audience must say',
    )
  },
)

t.test('updateSpace and getSpace for managers', async (t) => {
  const { w, owner, moderator, call } = await setup(t)
  t.equal(
    (
      await call('com.atproto.simplespace.updateSpace', owner, {
        space: w.space,
        readPolicy: { $type: `${D}#publicPolicy` },
      })
    ).status,
    200,
  )
  const got = await call(
    'com.atproto.simplespace.getSpace',
    moderator,
    { space: w.space },
    { query: true },
  )
  t.same(got, {
    status: 200,
    body: {
      uri: w.space,
      readPolicy: { $type: `${D}#publicPolicy` },
      writePolicy: members.writePolicy,
      policy: { $type: `${D}#publicPolicy` },
      appAccess: members.appAccess,
    },
  })
  t.match(
    await call('com.atproto.simplespace.updateSpace', moderator, {
      space: w.space,
      readPolicy: { $type: `${D}#publicPolicy` },
    }),
    { status: 400, body: { error: 'NotSpaceOwner' } },
  )
  t.match(
    await call(
      'com.atproto.simplespace.getSpace',
      w.user('nobody'),
      { space: w.space },
      { query: true },
    ),
    { status: 400, body: { error: 'NotSpaceOwner' } },
  )
  t.match(
    await call('com.atproto.simplespace.updateSpace', owner, {
      space: w.space.replace(/[^/]+$/, 'none'),
    }),
    { status: 400, body: { error: 'SpaceNotFound' } },
  )
})

t.test('members: put, add, remove, list; the managing app may, strangers may not', async (t) => {
  const { w, moderator, call } = await setup(t)
  const app = w.web.create('forum-app')
  await w.a.ctx.manager.updatePolicy(w.space, {
    writePolicy: { kind: 'managing-app', managingApp: `${app.did}#forum` },
  })
  const alice = w.user('alice')
  const bob = w.user('bob')
  t.equal(
    (
      await call('com.atproto.simplespace.putMember', moderator, {
        space: w.space,
        did: alice.did,
        read: true,
        write: false,
      })
    ).status,
    200,
  )
  t.equal(
    (await call('com.atproto.simplespace.addMember', app, { space: w.space, did: bob.did })).status,
    200,
    'the managing app adds',
  )
  const list = await call(
    'com.atproto.simplespace.listMembers',
    app,
    { space: w.space },
    { query: true },
  )
  t.same(
    list.body.members,
    [
      { did: alice.did, read: true, write: false },
      { did: bob.did, read: true, write: true },
    ].sort((x, y) => (x.did < y.did ? -1 : 1)),
  )
  t.equal(
    (
      await call('com.atproto.simplespace.removeMember', moderator, {
        space: w.space,
        did: bob.did,
      })
    ).status,
    200,
  )
  t.equal(
    (
      await call('com.atproto.simplespace.removeMember', moderator, {
        space: w.space,
        did: bob.did,
      })
    ).status,
    200,
    'idempotent',
  )
  t.match(
    await call('com.atproto.simplespace.updateSpace', app, {
      space: w.space,
      readPolicy: { $type: `${D}#publicPolicy` },
    }),
    { status: 400, body: { error: 'NotSpaceOwner' } },
    'the managing app cannot change policy',
  )
  t.match(
    await call('com.atproto.simplespace.putMember', w.user('stranger'), {
      space: w.space,
      did: alice.did,
      read: true,
      write: true,
    }),
    { status: 400, body: { error: 'NotSpaceOwner' } },
  )
  t.match(
    await call('com.atproto.simplespace.putMember', moderator, {
      space: w.space,
      did: 'not-a-did',
      read: true,
      write: true,
    }),
    { status: 400, body: { error: 'InvalidRequest' } },
  )
})

t.test(
  "refuses a managing app's service auth addressed to another service, as it refuses a manager's",
  async (t) => {
    const { w, moderator, call } = await setup(t)
    const app = w.web.create('forum-app')
    await w.a.ctx.manager.updatePolicy(w.space, {
      writePolicy: { kind: 'managing-app', managingApp: `${app.did}#forum` },
    })
    const alice = w.user('alice')
    const elsewhere = { aud: 'did:web:unrelated.example' }
    const put = { space: w.space, did: alice.did, read: true, write: true }
    for (const who of [app, moderator]) {
      t.match(
        await call('com.atproto.simplespace.putMember', who, put, elsewhere),
        { status: 403, body: { error: 'Forbidden' } },
        'putMember',
      )
      t.match(
        await call(
          'com.atproto.simplespace.removeMember',
          who,
          { space: w.space, did: alice.did },
          elsewhere,
        ),
        { status: 403, body: { error: 'Forbidden' } },
        'removeMember',
      )
      for (const nsid of [
        'com.atproto.simplespace.listMembers',
        'dev.gatehouse.simplespace.exportMembers',
      ]) {
        t.match(
          await call(nsid, who, { space: w.space }, { ...elsewhere, query: true }),
          { status: 403, body: { error: 'Forbidden' } },
          nsid,
        )
      }
    }
    t.notOk(await w.a.ctx.spaces.members.isMember(w.space, alice.did, 'read'), 'nothing changed')
    // The same rule for everyone: addressed to Gatehouse itself or to the authority, either form.
    for (const aud of [
      w.a.ctx.identity.did,
      `${w.a.ctx.identity.did}#atproto_space_host`,
      w.authority.did,
      `${w.authority.did}#atproto_space_host`,
    ]) {
      t.equal((await call('com.atproto.simplespace.putMember', app, put, { aud })).status, 200, aud)
    }
  },
)

t.test('listMembers pages by DID and stays consistent while the list changes', async (t) => {
  const { w, moderator, call } = await setup(t)
  const dids = Array.from(
    { length: 25 },
    (_, i) =>
      `did:plc:${String.fromCharCode(97 + (i % 26)).repeat(4)}${String(i).padStart(20, '0')}`,
  )
  for (const did of dids) await w.a.ctx.spaces.putMember(w.space, did, { read: true, write: true })
  const seen: string[] = []
  let cursor: string | undefined
  for (let page = 0; page < 20; page++) {
    const res = await call(
      'com.atproto.simplespace.listMembers',
      moderator,
      { space: w.space, limit: '4', ...(cursor ? { cursor } : {}) },
      { query: true },
    )
    seen.push(...res.body.members.map((m: { did: string }) => m.did))
    // Concurrent churn: new members and removals between pages.
    await w.a.ctx.spaces.putMember(w.space, `did:plc:zzzz${String(page).padStart(20, '0')}`, {
      read: true,
      write: true,
    })
    if (!res.body.cursor) break
    cursor = res.body.cursor
  }
  for (const did of dids)
    t.equal(seen.filter((d) => d === did).length, 1, `${did} seen exactly once`)
  t.same(seen, [...seen].sort(), 'in DID order')
})

t.test(
  'deleteSpace: tombstone, SpaceDeleted for credentials, idempotent, re-creatable',
  async (t) => {
    const { w, owner, call } = await setup(t)
    const alice = w.user('alice')
    await w.a.ctx.spaces.putMember(w.space, alice.did, { read: true, write: true })
    t.equal(
      (await call('com.atproto.simplespace.deleteSpace', owner, { space: w.space })).status,
      200,
    )
    t.match(await w.getCredential(alice), { status: 400, body: { error: 'SpaceDeleted' } })
    t.equal(
      (await call('com.atproto.simplespace.deleteSpace', owner, { space: w.space })).status,
      200,
      'again: no-op',
    )
    t.match(
      await call('com.atproto.simplespace.deleteSpace', owner, {
        space: w.space.replace(/[^/]+$/, 'never'),
      }),
      { status: 400, body: { error: 'SpaceNotFound' } },
    )
    const skey = w.space.split('/').pop()!
    t.equal(
      (
        await call('com.atproto.simplespace.createSpace', owner, {
          spaceType: 'com.example.forum',
          skey,
          ...members,
        })
      ).status,
      200,
      're-created',
    )
    t.match(
      await w.getCredential(alice),
      { status: 400, body: { error: 'UserNotAuthorized' } },
      'with a fresh, empty member list',
    )
  },
)

t.test('a mirror replays the oplog over HTTP and checks the digest', async (t) => {
  const { w, moderator, call } = await setup(t)
  for (let i = 0; i < 12; i++) {
    await call('com.atproto.simplespace.putMember', moderator, {
      space: w.space,
      did: `did:plc:${'m'.repeat(22)}${String(i % 5).padStart(2, '0')}`,
      read: i % 2 === 0,
      write: true,
    })
    if (i % 4 === 3)
      await call('com.atproto.simplespace.removeMember', moderator, {
        space: w.space,
        did: `did:plc:${'m'.repeat(22)}0${i % 5}`,
      })
  }
  const table = new Map<string, { read: boolean; write: boolean }>()
  const hash = new LtHash()
  let since: string | undefined
  let last: Record<string, any> | undefined
  for (let guard = 0; guard < 50; guard++) {
    const res = await call(
      'dev.gatehouse.simplespace.listMemberOps',
      moderator,
      { space: w.space, limit: '3', ...(since ? { since } : {}) },
      { query: true },
    )
    t.equal(res.status, 200)
    last = res.body
    for (const op of res.body.ops) {
      const before = table.get(op.did)
      if (before) hash.remove(memberElement(op.did, before))
      if (op.op === 'remove') table.delete(op.did)
      else {
        table.set(op.did, { read: op.read, write: op.write })
        hash.add(memberElement(op.did, op))
      }
    }
    if (!res.body.cursor || res.body.cursor === res.body.rev) break
    since = res.body.cursor
  }
  const state = await call(
    'dev.gatehouse.simplespace.getMemberState',
    moderator,
    { space: w.space },
    { query: true },
  )
  t.equal(state.body.count, table.size)
  t.equal(state.body.rev, last!.rev)
  t.equal(
    Buffer.from(hash.digest()).toString('base64').replace(/=+$/, ''),
    state.body.digest.$bytes,
    'replayed digest matches',
  )
  const listed = await call(
    'com.atproto.simplespace.listMembers',
    moderator,
    { space: w.space, limit: '100' },
    { query: true },
  )
  t.same(
    new Map(listed.body.members.map((m: any) => [m.did, { read: m.read, write: m.write }])),
    table,
  )

  w.a.clock.advance(86_400_000)
  await w.a.ctx.spaces.members.compact(w.space, new Date(w.a.clock.nowMs()))
  t.match(
    await call(
      'dev.gatehouse.simplespace.listMemberOps',
      moderator,
      { space: w.space },
      { query: true },
    ),
    { status: 400, body: { error: 'OplogCompacted' } },
  )
  t.match(
    await call(
      'dev.gatehouse.simplespace.listMemberOps',
      w.user('nobody'),
      { space: w.space },
      { query: true },
    ),
    { status: 400, body: { error: 'NotSpaceOwner' } },
  )
})

/**
 * Text that one database cannot store as the other does — a NUL, or a UTF-16 surrogate without its
 * pair — is refused at the edge, so SQLite and PostgreSQL answer alike: 400 InvalidRequest for
 * params and bodies (listMembers cursor, unregisterNotify service, revokeCredentials ids and client
 * ids, createSpace allow lists), and the token family's 401 for token ids (delegation token and
 * DPoP proof `jti`). Never a 500.
 */
import t from 'tap'
import { accessTokenHash } from '../../src/crypto/dpop.js'
import { findUnstorableText } from '../../src/lexicon/formats.js'
import { TestArbiter } from '../_helpers/arbiter.js'
import { dpopHolder, dpopProof } from '../_helpers/dpop.js'
import { spaceWorld } from '../_helpers/spaces.js'
import { delegationToken, presentHeaders, serviceJwt } from '../_helpers/tokens.js'

const NUL = 'a\u0000b'
const LONE = 'a\uD800b'
const D = 'com.atproto.simplespace.defs'

t.test('findUnstorableText names the first bad string, keys included', async (t) => {
  t.equal(findUnstorableText({ a: 'ok', b: ['x', NUL] }), 'b.1')
  t.equal(findUnstorableText({ [LONE]: 1 }), LONE)
  t.equal(findUnstorableText('\uDC00'), '(value)')
  t.equal(findUnstorableText({ a: '\uD83D\uDE00 paired', b: 'plain' }), undefined, 'a pair is fine')
  t.equal(findUnstorableText(null), undefined)
})

t.test('params and bodies: 400 InvalidRequest, before anything is stored', async (t) => {
  // The fixture's own arbiter is in spaceWorld; this import keeps the suite in CI's PostgreSQL leg.
  t.ok(TestArbiter)
  const w = await spaceWorld(t)
  const manager = w.user('manager')
  await w.a.ctx.managers.change(w.authority.did, manager.did, 'admin', 'operator')
  const post = async (nsid: string, body: unknown, headers: Record<string, string>) => {
    const res = await w.a.fetch(`/xrpc/${nsid}`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
    return { status: res.status, body: (await res.json().catch(() => undefined)) as any }
  }
  const asManager = (nsid: string) => ({
    authorization: `Bearer ${serviceJwt({ iss: manager, aud: w.authority.did, lxm: nsid, nowSec: w.now() })}`,
  })
  const refused = { status: 400, body: { error: 'InvalidRequest', message: /NUL or unpaired/ } }

  await w.a.ctx.spaces.setRosterVisibility(w.space, 'public')
  const cursor = await w.a.fetch(
    `/xrpc/com.atproto.simplespace.listMembers?${new URLSearchParams({ space: w.space, cursor: NUL })}`,
  )
  t.match({ status: cursor.status, body: await cursor.json() }, refused, 'listMembers cursor')
  // A lone surrogate cannot be sent as UTF-8; its CESU-8 bytes are not UTF-8 either: never a 500.
  const cesu = await w.a.fetch(
    `/xrpc/com.atproto.simplespace.listMembers?space=${encodeURIComponent(w.space)}&cursor=a%ED%A0%80b`,
  )
  t.ok(cesu.status < 500, `CESU-8 surrogate in a query: ${cesu.status}`)

  const member = w.user('member')
  await w.a.ctx.spaces.putMember(w.space, member.did, { read: true, write: true })
  const cred = await w.getCredential(member)
  t.equal(cred.status, 200)
  t.match(
    await post(
      'com.atproto.space.unregisterNotify',
      { space: w.space, service: `did:web:syncer.example#${NUL}` },
      presentHeaders(cred.body.credential as string, w.authority.did, cred.holder),
    ),
    refused,
    'unregisterNotify service',
  )

  const revoke = 'dev.gatehouse.space.revokeCredentials'
  t.match(
    await post(revoke, { space: w.space, credentials: [NUL] }, asManager(revoke)),
    refused,
    'revokeCredentials ids',
  )
  t.match(
    await post(revoke, { space: w.space, clientId: LONE }, asManager(revoke)),
    refused,
    'revokeCredentials client id',
  )

  const create = 'com.atproto.simplespace.createSpace'
  t.match(
    await post(
      create,
      {
        spaceType: 'com.example.forum',
        skey: 'text',
        readPolicy: { $type: `${D}#memberListPolicy` },
        writePolicy: { $type: `${D}#memberListPolicy` },
        appAccess: { $type: `${D}#allowList`, allowed: [`https://app.example/${LONE}`] },
      },
      asManager(create),
    ),
    refused,
    'createSpace allow list',
  )
  t.equal((await w.a.ctx.spaces.lookup(w.space.replace(/[^/]+$/, 'text'))).state, 'absent')
})

t.test('token ids: the token family 401, never a 500', async (t) => {
  const w = await spaceWorld(t)
  const member = w.user('member')
  await w.a.ctx.spaces.putMember(w.space, member.did, { read: true, write: true })
  for (const jti of [NUL, LONE, 'has space']) {
    const token = delegationToken({ user: member, space: w.space, nowSec: w.now(), jti })
    const res = await w.getCredential(member, { token })
    t.match(res, { status: 401, body: { error: 'BadJwt', message: /jti/ } }, JSON.stringify(jti))
  }

  const h = await dpopHolder()
  const htu = `${w.a.ctx.cfg.service.publicUrl}/xrpc/com.atproto.space.getSpaceCredential`
  for (const jti of [NUL, LONE]) {
    const res = await w.a.fetch('/xrpc/com.atproto.space.getSpaceCredential', {
      method: 'POST',
      headers: {
        authorization: `Bearer ${delegationToken({ user: member, space: w.space, nowSec: w.now() })}`,
        dpop: await dpopProof(h, { htm: 'POST', htu, iat: w.now(), jti }),
        'content-type': 'application/json',
      },
      body: JSON.stringify({ space: w.space }),
    })
    t.match(
      { status: res.status, body: await res.json() },
      { status: 401, body: { error: 'BadDpopProof', message: /jti/ } },
      `DPoP proof jti ${JSON.stringify(jti)}`,
    )
  }
  t.ok(accessTokenHash('x'))
})

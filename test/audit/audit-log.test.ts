/**
 * The audit log: a hash chain per authority that names the first broken entry when one is edited,
 * inserted or deleted directly in the database (the newest ones too, through the head); entries
 * written in the transaction of the change they record (a failed one leaves none); every wired
 * management action and refusal leaves its entry, through REST, XRPC and the CLI; and the log read
 * back through REST (list, export, verify) and the CLI. On SQLite and PostgreSQL.
 */
import t from 'tap'
import {
  entryHash,
  GENESIS,
  type AuditEntryView,
  type AuditInput,
} from '../../src/audit/audit-log.js'
import { runCli } from '../../src/cli.js'
import { loadConfig } from '../../src/config.js'
import type { AppContext } from '../../src/context.js'
import { answerBody } from '../_helpers/fetch.js'
import { getHostedSpace } from '../../src/spaces/hosted.js'
import { spaceWorld, type SpaceWorld } from '../_helpers/spaces.js'
import { serviceJwt } from '../_helpers/tokens.js'

const OWNER_ACTOR = { did: 'did:web:owner.example', door: 'rest' } as const

/** An entry in a transaction of its own. */
const appendAlone = (ctx: AppContext, input: AuditInput) =>
  ctx.db.transact((tx) => ctx.audit.append(tx, input))

/** Raw SQL with `?` placeholders on either database. */
function sql(ctx: AppContext, text: string, ...values: unknown[]) {
  let n = 0
  const native = ctx.db.kind === 'postgres' ? text.replace(/\?/g, () => `$${++n}`) : text
  return ctx.db.prisma.$executeRawUnsafe(native, ...values)
}

async function appendFive(w: SpaceWorld) {
  const authority = w.authority.did
  for (const role of ['moderator', 'admin', 'owner', 'admin', 'moderator'])
    await appendAlone(w.a.ctx, {
      authority,
      actor: OWNER_ACTOR,
      action: 'role.change',
      subject: 'did:web:someone.example',
      after: { role },
    })
  // spaceWorld's space creation is entry 1; these are 2 to 6.
  return authority
}

const rowOf = (ctx: AppContext, authority: string, seq: number) =>
  ctx.db.prisma.auditEntry.findUniqueOrThrow({
    where: { authorityDid_seq: { authorityDid: authority, seq } },
  })

/** Moves entries from `from` on by `by` places (two steps, so the primary key never collides). */
async function shift(ctx: AppContext, authority: string, from: number, by: number) {
  await sql(
    ctx,
    'UPDATE audit_entry SET seq = seq + 1000 WHERE authority_did = ? AND seq >= ?',
    authority,
    from,
  )
  await sql(
    ctx,
    'UPDATE audit_entry SET seq = seq - 1000 + ? WHERE authority_did = ? AND seq >= 1000',
    by,
    authority,
  )
}

t.test('an edited, inserted or deleted entry is named as the first broken one', async (t) => {
  const w = await spaceWorld(t)
  const { ctx } = w.a
  const authority = await appendFive(w)
  t.match(await ctx.audit.verify(authority), { ok: true, entries: 6 }, 'the chain holds')

  const original = await rowOf(ctx, authority, 4)
  await sql(
    ctx,
    `UPDATE audit_entry SET after = ? WHERE authority_did = ? AND seq = 4`,
    '{"role":"moderator"}',
    authority,
  )
  t.match(await ctx.audit.verify(authority), { ok: false, firstBroken: 4, why: /hash/ }, 'edited')
  await sql(
    ctx,
    `UPDATE audit_entry SET after = ? WHERE authority_did = ? AND seq = 4`,
    original.after,
    authority,
  )
  t.match(await ctx.audit.verify(authority), { ok: true }, 'restored')

  // A forged entry slipped in as 4, the later ones moved up to make room.
  await shift(ctx, authority, 4, 1)
  const third = await rowOf(ctx, authority, 3)
  const forged = {
    authority,
    seq: 4,
    at: third.at,
    actor: 'did:web:mallory.example',
    door: 'rest',
    action: 'role.change',
    space: null,
    subject: 'did:web:mallory.example',
    before: null,
    after: '{"role":"owner"}',
    outcome: 'ok',
    reason: null,
  }
  const { authority: _, ...columns } = forged
  await ctx.db.prisma.auditEntry.create({
    data: { ...columns, authorityDid: authority, prevHash: third.hash, hash: new Uint8Array(32) },
  })
  t.match(await ctx.audit.verify(authority), { ok: false, firstBroken: 4 }, 'inserted')
  // Even a forger who computes the hash right breaks the next entry, which committed to the old 4.
  const good = new Uint8Array(entryHash(forged, Buffer.from(third.hash)))
  await sql(
    ctx,
    'UPDATE audit_entry SET hash = ? WHERE authority_did = ? AND seq = 4',
    good,
    authority,
  )
  t.match(await ctx.audit.verify(authority), { ok: false, firstBroken: 5 }, 'well forged: the next')
  await sql(ctx, 'DELETE FROM audit_entry WHERE authority_did = ? AND seq = 4', authority)
  await shift(ctx, authority, 5, -1)
  t.match(await ctx.audit.verify(authority), { ok: true }, 'restored')

  await sql(ctx, 'DELETE FROM audit_entry WHERE authority_did = ? AND seq = 3', authority)
  t.match(
    await ctx.audit.verify(authority),
    { ok: false, firstBroken: 3, why: 'missing' },
    'deleted',
  )
  await shift(ctx, authority, 4, -1)
  t.match(
    await ctx.audit.verify(authority),
    { ok: false, firstBroken: 3 },
    'deleted and renumbered',
  )

  const w2 = await spaceWorld(t)
  const other = await appendFive(w2)
  await sql(w2.a.ctx, 'DELETE FROM audit_entry WHERE authority_did = ? AND seq >= 5', other)
  t.match(
    await w2.a.ctx.audit.verify(other),
    { ok: false, firstBroken: 5, why: /head names entry 6/ },
    'the newest entries deleted: the head names them',
  )
})

t.test('appends racing on one authority each take their own seq', async (t) => {
  const w = await spaceWorld(t)
  const { ctx } = w.a
  const authority = w.authority.did
  const made = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      appendAlone(ctx, { authority, actor: OWNER_ACTOR, action: `race.${i}` }),
    ),
  )
  t.same(
    made.map((e) => e.seq).sort((a, b) => a - b),
    Array.from({ length: 20 }, (_, i) => i + 2),
  )
  t.match(await ctx.audit.verify(authority), { ok: true, entries: 21 })
})

t.test('an entry commits with its transaction: a failed one leaves none', async (t) => {
  const w = await spaceWorld(t)
  const { ctx } = w.a
  const authority = w.authority.did
  const before = await ctx.audit.query({ authority, limit: 100 })
  await t.rejects(
    ctx.db.transact(async (tx) => {
      await ctx.audit.append(tx, { authority, actor: OWNER_ACTOR, action: 'member.put' })
      throw new Error('the change failed')
    }),
    /the change failed/,
  )
  t.same(await ctx.audit.query({ authority, limit: 100 }), before, 'no entry')
  t.match(await ctx.audit.verify(authority), { ok: true, entries: before.length })
  const next = await appendAlone(ctx, { authority, actor: OWNER_ACTOR, action: 'x' })
  t.equal(next.seq, before.length + 1, 'the next entry takes the seq the failed one did not')
  t.equal(next.prevHash, before[0]!.hash)

  const fresh = 'did:web:fresh.example'
  await appendAlone(ctx, { authority: fresh, actor: OWNER_ACTOR, action: 'x' })
  t.equal(
    (await ctx.audit.query({ authority: fresh, limit: 1 }))[0]!.prevHash,
    GENESIS.toString('hex'),
  )
})

/** JSON calls on the world's authority as `who` with a fresh token of `role`. */
async function restAs(w: SpaceWorld, who: string, role: 'owner' | 'admin' | 'moderator') {
  await w.a.ctx.managers.change(w.authority.did, who, role, 'operator')
  const { token } = await w.a.ctx.tokens.create({
    authority: w.authority.did,
    createdBy: who,
    creatorRole: role,
    name: role,
    role,
  })
  const base = `/api/v1/authorities/${encodeURIComponent(w.authority.did)}`
  return async (method: string, sub: string, body?: object) => {
    const res = await w.a.fetch(`${base}${sub}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    })
    return { status: res.status, body: (await answerBody(res)).body }
  }
}

const sk = (w: SpaceWorld) => `/spaces/com.example.forum/${w.space.split('/').pop()}`

t.test('each REST management action leaves its entry; refusals too', async (t) => {
  const w = await spaceWorld(t)
  const owner = w.user('owner').did
  const call = await restAs(w, owner, 'owner')
  const member = w.user('member').did
  const helper = w.user('helper').did
  const enc = encodeURIComponent

  t.equal(
    (
      await call('POST', '/spaces', {
        spaceType: 'com.example.chat',
        skey: 'x',
        preset: 'members-only',
      })
    ).status,
    201,
  )
  t.equal(
    (await call('PATCH', '/spaces/com.example.chat/x', { preset: 'public-read' })).status,
    200,
  )
  t.equal(
    (await call('PUT', `${sk(w)}/members/${enc(member)}`, { read: true, write: false })).status,
    200,
  )
  t.equal((await call('DELETE', `${sk(w)}/members/${enc(member)}`)).status, 204)
  t.equal((await call('PUT', `/managers/${enc(helper)}`, { role: 'moderator' })).status, 200)
  const made = await call('POST', '/tokens', { name: 'script', role: 'moderator' })
  t.equal(made.status, 201)
  t.equal((await call('DELETE', `/tokens/${made.body.id}`)).status, 204)
  t.equal((await call('DELETE', '/spaces/com.example.chat/x')).status, 204)

  const mod = await restAs(w, helper, 'moderator')
  t.match(await mod('PUT', `/managers/${enc(member)}`, { role: 'moderator' }), { status: 403 })
  t.match(await mod('GET', '/audit'), { status: 403 }, 'moderators do not read the audit log')

  const { body } = await call('GET', '/audit?limit=1000')
  const entries = [...body.entries].reverse()
  const byOwner = entries.filter((e: AuditEntryView) => e.actor === owner && e.door === 'rest')
  t.same(
    byOwner.map((e: AuditEntryView) => e.action),
    [
      'space.create',
      'space.update',
      'member.put',
      'member.remove',
      'role.change',
      'token.create',
      'token.revoke',
      'space.delete',
    ],
    'one entry per action, in order',
  )
  const x = `at://${w.authority.did}/space/com.example.chat/x`
  t.match(byOwner[0], { space: x, outcome: 'ok', before: null, after: /member-list/ })
  t.match(byOwner[1], { before: /member-list/, after: /public/ })
  t.match(byOwner[2], { subject: member, before: null, after: '{"read":true,"write":false}' })
  t.match(byOwner[3], { subject: member, before: '{"read":true,"write":false}' })
  t.match(byOwner[4], { subject: helper, before: null, after: '{"role":"moderator"}' })
  t.match(byOwner[5], { subject: made.body.id, after: /"role":"moderator"/ })
  t.notMatch(byOwner[5].after, /hash|gh_/, 'no secret and no hash of one in the log')
  t.match(byOwner[6], { subject: made.body.id, after: `{"revoked":["${made.body.id}"]}` })
  t.match(byOwner[7], { space: x, before: /public/ })
  t.match(
    entries.find((e: AuditEntryView) => e.actor === helper),
    {
      action: 'refused',
      outcome: 'refused',
      door: 'rest',
      reason: /^roles: The moderator role/,
    },
  )
  t.match(entries.at(-1), { actor: helper, action: 'refused', reason: /^audit:/ })

  const admin = w.user('admin').did
  const adm = await restAs(w, admin, 'admin')
  t.match(await adm('PUT', `/managers/${enc(owner)}`, { role: 'admin' }), { status: 403 })
  t.match((await call('GET', '/audit?limit=1')).body.entries[0], {
    actor: admin,
    action: 'role.change',
    outcome: 'refused',
    subject: owner,
    after: '{"role":"admin"}',
    reason: /only an owner/,
  })
})

t.test('authority steps over REST are recorded, keys by their public halves', async (t) => {
  const w = await spaceWorld(t)
  const owner = w.user('owner').did
  const call = await restAs(w, owner, 'owner')
  t.equal((await call('POST', '/deactivate', {})).status, 200)
  t.equal((await call('POST', '/activate', {})).status, 200)
  const rotated = await call('POST', '/rotate-signing-key', {})
  t.equal(rotated.status, 200)
  const [rotation, on, off] = await w.a.ctx.audit.query({ authority: w.authority.did, limit: 3 })
  t.match(off, { action: 'authority.deactivate', actor: owner, door: 'rest' })
  t.match(on, { action: 'authority.activate', before: '{"status":"deactivated"}' })
  const now = rotated.body.keys.find((k: any) => k.purpose === 'atproto' && k.status === 'active')
  t.match(rotation, {
    action: 'authority.rotate-signing-key',
    before: `{"atproto":"${w.authority.key.did()}"}`,
    after: `{"atproto":"${now.publicKey}"}`,
  })
})

t.test('revocations are recorded: asked for, and those a change makes', async (t) => {
  const w = await spaceWorld(t)
  const owner = w.user('owner').did
  const call = await restAs(w, owner, 'owner')
  const alice = w.user('alice')
  const member = `${sk(w)}/members/${encodeURIComponent(alice.did)}`
  await call('PUT', member, { read: true, write: true })
  t.equal((await w.getCredential(alice)).status, 200)
  t.equal((await call('DELETE', member)).status, 204)
  t.match(await call('POST', `${sk(w)}/credentials/revoke`, {}), { body: { revoked: 0 } })
  const [asked, made, removed] = await w.a.ctx.audit.query({
    authority: w.authority.did,
    limit: 3,
  })
  t.match(removed, { action: 'member.remove', actor: owner })
  t.match(made, {
    action: 'credentials.revoke',
    actor: owner,
    door: 'rest',
    space: w.space,
    after: `{"where":{"userDid":"${alice.did}"},"revoked":1}`,
  })
  t.match(asked, { action: 'credentials.revoke', after: '{"where":{},"revoked":0}' })
})

t.test('REST reads the log: filters, pages, export as JSON lines, verify', async (t) => {
  const w = await spaceWorld(t)
  const owner = w.user('owner').did
  const call = await restAs(w, owner, 'owner')
  const enc = encodeURIComponent
  for (const m of ['a', 'b', 'c'])
    await call('PUT', `${sk(w)}/members/${enc(w.user(m).did)}`, { read: true, write: true })
  await call('DELETE', `${sk(w)}/members/${enc(w.user('a').did)}`)

  const puts = await call('GET', '/audit?action=member.put&limit=2')
  t.equal(puts.body.entries.length, 2)
  t.ok(puts.body.cursor, 'a full page has a cursor')
  const rest = await call('GET', `/audit?action=member.put&limit=2&cursor=${puts.body.cursor}`)
  t.same(
    [...puts.body.entries, ...rest.body.entries].map((e: AuditEntryView) => e.subject),
    ['c', 'b', 'a'].map((m) => w.user(m).did),
    'newest first, across pages',
  )
  t.equal(
    (await call('GET', `/audit?actor=${enc(owner)}&space=${enc(w.space)}`)).body.entries.length,
    4,
  )
  // The space, the owner's role and token, made before any REST call.
  t.equal((await call('GET', `/audit?actor=system`)).body.entries.length, 3)
  const at = w.a.clock.now().toISOString()
  t.equal((await call('GET', `/audit?from=${enc(at)}`)).body.entries.length, 7)
  t.equal((await call('GET', `/audit?to=${enc(at)}`)).body.entries.length, 0)
  t.match(await call('GET', '/audit?limit=1001'), {
    status: 400,
    body: { error: 'InvalidRequest' },
  })
  t.match(await call('GET', '/audit?from=yesterday'), { status: 400 })

  const exported = await call('GET', '/audit/export')
  t.equal(exported.body.length, 7)
  let prev: Buffer = GENESIS
  for (const e of exported.body) {
    t.equal(e.prevHash, prev.toString('hex'))
    const hash = entryHash({ ...e, at: new Date(e.at) }, prev)
    t.equal(hash.toString('hex'), e.hash, `entry ${e.seq} recomputes from its export`)
    prev = hash
  }
  t.same((await call('POST', '/audit/verify', {})).body, {
    ok: true,
    entries: 7,
    head: prev.toString('hex'),
  })
  await sql(
    w.a.ctx,
    'UPDATE audit_entry SET actor = ?, door = ? WHERE authority_did = ? AND seq = 2',
    'x',
    'elsewhere',
    w.authority.did,
  )
  t.match((await call('POST', '/audit/verify')).body, { ok: false, firstBroken: 2 })
  t.match(
    await call('GET', '/audit?actor=x'),
    { status: 200, body: { entries: [{ seq: 2, door: 'elsewhere' }] } },
    'a tampered entry can still be read',
  )
})

t.test('XRPC actions and refusals are recorded with the issuer and the xrpc door', async (t) => {
  const w = await spaceWorld(t)
  const owner = w.user('owner')
  const stranger = w.user('stranger')
  await w.a.ctx.managers.change(w.authority.did, owner.did, 'owner', 'operator')
  const call = async (who: typeof owner, nsid: string, input: object) => {
    const jwt = serviceJwt({ iss: who, aud: w.authority.did, lxm: nsid, nowSec: w.now() })
    const res = await w.a.fetch(`/xrpc/${nsid}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' },
      body: JSON.stringify(input),
    })
    return res.status
  }
  const member = w.user('member').did
  t.equal(
    await call(owner, 'com.atproto.simplespace.addMember', { space: w.space, did: member }),
    200,
  )
  t.equal(
    await call(stranger, 'com.atproto.simplespace.removeMember', { space: w.space, did: member }),
    400,
  )
  const visibility = { space: w.space, visibility: 'members' }
  t.equal(await call(owner, 'dev.gatehouse.simplespace.setRosterVisibility', visibility), 200)
  const [shown, refused, added] = await w.a.ctx.audit.query({
    authority: w.authority.did,
    limit: 3,
  })
  t.match(shown, {
    actor: owner.did,
    door: 'xrpc',
    action: 'space.roster-visibility',
    before: '{"rosterVisibility":"owner"}',
    after: '{"rosterVisibility":"members"}',
  })
  t.match(added, {
    actor: owner.did,
    door: 'xrpc',
    action: 'member.put',
    subject: member,
    space: w.space,
  })
  t.match(refused, {
    actor: stranger.did,
    door: 'xrpc',
    action: 'refused',
    outcome: 'refused',
    space: w.space,
    reason: /^membership:/,
  })
})

t.test('the CLI records the operator, and lists, exports and verifies the log', async (t) => {
  const w = await spaceWorld(t)
  w.a.clock.set(Date.now())
  const cli = async (argv: string[]) => {
    const { config, secrets } = loadConfig({
      GATEHOUSE_DATA_DIR: w.a.dataDir,
      GATEHOUSE_DATABASE_URL: w.a.database.url,
      GATEHOUSE_LOG_LEVEL: 'silent',
    })
    const out: string[] = []
    await runCli(argv, config, secrets, (l) => out.push(l), undefined)
    return out
  }
  const authority = w.authority.did
  const member = w.user('member').did
  await cli(['member', 'add', w.space, member])
  await cli(['manager', 'grant', authority, member, '--role', 'moderator'])
  const listed = JSON.parse(
    (await cli(['audit', 'list', authority, '--actor', 'operator'])).join('\n'),
  )
  t.match(listed, [
    { actor: 'operator', door: 'cli', action: 'role.change', subject: member },
    { actor: 'operator', door: 'cli', action: 'member.put', subject: member },
  ])
  const since = JSON.parse(
    (await cli(['audit', 'list', authority, '--action', 'member.put', '--limit', '5'])).join('\n'),
  )
  t.equal(since.length, 1)
  await t.rejects(cli(['audit', 'list', authority, '--limit', '5000']), /--limit/)
  await t.rejects(cli(['audit', 'list', authority, '--since', 'soon']), /--since/)
  const lines = await cli(['audit', 'export', authority])
  t.equal(lines.length, 3)
  t.same(
    lines.map((l) => JSON.parse(l).seq),
    [1, 2, 3],
  )
  t.match(JSON.parse((await cli(['audit', 'verify', authority])).join('\n')), {
    ok: true,
    entries: 3,
  })
  await sql(w.a.ctx, 'DELETE FROM audit_entry WHERE authority_did = ? AND seq = 2', authority)
  t.match(JSON.parse((await cli(['audit', 'verify', authority])).join('\n')), {
    ok: false,
    firstBroken: 2,
  })
})

t.test(
  'invites, join requests and bans leave their entries, by the door each came through',
  async (t) => {
    const w = await spaceWorld(t)
    const owner = w.user('owner').did
    const call = await restAs(w, owner, 'owner')
    const xrpc = async (who: ReturnType<SpaceWorld['user']>, nsid: string, input: object) => {
      const jwt = serviceJwt({ iss: who, aud: w.authority.did, lxm: nsid, nowSec: w.now() })
      const res = await w.a.fetch(`/xrpc/${nsid}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' },
        body: JSON.stringify(input),
      })
      return { status: res.status, body: (await answerBody(res)).body }
    }
    const invitee = w.user('invitee')
    const asker = w.user('asker')
    const other = w.user('other')
    const enc = encodeURIComponent

    const invite = await call('POST', `${sk(w)}/invites`, { write: true, maxUses: 2 })
    t.equal(invite.status, 201)
    const spare = await call('POST', `${sk(w)}/invites`, {})
    t.equal((await call('POST', `${sk(w)}/invites/${spare.body.id}/revoke`)).status, 204)
    t.equal(
      (await xrpc(invitee, 'dev.gatehouse.space.acceptInvite', { code: invite.body.code })).status,
      200,
    )
    t.equal((await call('PUT', `${sk(w)}/join-settings`, { open: true })).status, 200)
    const asked = await xrpc(asker, 'dev.gatehouse.space.requestJoin', { space: w.space })
    t.equal(asked.status, 200)
    const approved = await call('POST', `${sk(w)}/join-requests/${asked.body.id}/approve`, {
      read: true,
      write: false,
    })
    t.equal(approved.status, 200)
    const second = await xrpc(other, 'dev.gatehouse.space.requestJoin', { space: w.space })
    const deny = `${sk(w)}/join-requests/${second.body.id}/deny`
    t.equal((await call('POST', deny, { reason: 'not now' })).status, 200)
    t.equal((await call('PUT', `${sk(w)}/bans/${enc(other.did)}`, { reason: 'spam' })).status, 200)
    t.equal((await call('DELETE', `${sk(w)}/bans/${enc(other.did)}`)).status, 204)

    const entries = (await w.a.ctx.audit.query({ authority: w.authority.did, limit: 100 }))
      .reverse()
      .filter((e) => /^(invite|join-|ban)/.test(e.action))
    t.same(
      entries.map((e) => [e.actor, e.door, e.action, e.subject]),
      [
        [owner, 'rest', 'invite.create', invite.body.id],
        [owner, 'rest', 'invite.create', spare.body.id],
        [owner, 'rest', 'invite.revoke', spare.body.id],
        [invitee.did, 'xrpc', 'invite.accept', invitee.did],
        [owner, 'rest', 'join-settings.change', w.space],
        [asker.did, 'xrpc', 'join-request.create', asked.body.id],
        [owner, 'rest', 'join-request.approve', asked.body.id],
        [other.did, 'xrpc', 'join-request.create', second.body.id],
        [owner, 'rest', 'join-request.deny', second.body.id],
        [owner, 'rest', 'ban.put', other.did],
        [owner, 'rest', 'ban.lift', other.did],
      ],
      'one entry per step, with who and through which door',
    )
    const [lift] = await w.a.ctx.audit.query({ authority: w.authority.did, limit: 1 })
    t.match(lift, {
      action: 'ban.lift',
      subject: other.did,
      before: '{"reason":"spam","expiresAt":null}',
    })
    t.match(
      entries.find((e) => e.action === 'invite.accept'),
      {
        after: `{"invite":"${invite.body.id}","read":true,"write":true}`,
      },
    )
    t.notMatch(JSON.stringify(entries), invite.body.code, 'no invite code in the log')
    t.match(await w.a.ctx.audit.verify(w.authority.did), { ok: true })

    // A step refused inside its transaction leaves no entry: the second accept of a used invite.
    const before = (await w.a.ctx.audit.query({ authority: w.authority.did, limit: 1 }))[0]!.seq
    const used = await call('POST', `${sk(w)}/invites`, {})
    const third = w.user('third')
    t.equal(
      (await xrpc(third, 'dev.gatehouse.space.acceptInvite', { code: used.body.code })).status,
      200,
    )
    const seq = (await w.a.ctx.audit.query({ authority: w.authority.did, limit: 1 }))[0]!.seq
    t.equal(
      (await xrpc(other, 'dev.gatehouse.space.acceptInvite', { code: used.body.code })).status,
      400,
    )
    t.equal(
      (await w.a.ctx.audit.query({ authority: w.authority.did, limit: 1 }))[0]!.seq,
      seq,
      'nothing appended for the refused accept',
    )
    t.ok(seq > before)
  },
)

t.test('a bulk import leaves one entry per slice, in the slice’s transaction', async (t) => {
  const w = await spaceWorld(t)
  const config = await getHostedSpace(w.a.ctx, w.space)
  const dids = Array.from({ length: 150 }, (_, i) => `did:web:m${i}.example`)
  async function* lines(entries: { did: string; flags?: { read: boolean; write: boolean } }[]) {
    for (const e of entries) yield { did: e.did, flags: e.flags }
  }
  const by = { did: 'did:web:importer.example', door: 'rest' } as const
  await w.a.ctx.manager.importMembers(
    config,
    lines(dids.map((did) => ({ did, flags: { read: true, write: false } }))),
    by,
  )
  await w.a.ctx.manager.importMembers(
    config,
    lines([
      { did: dids[0]!, flags: { read: true, write: true } },
      { did: dids[1]! },
      { did: dids[2]!, flags: { read: true, write: false } },
    ]),
    by,
  )
  const entries = await w.a.ctx.audit.query({
    authority: w.authority.did,
    action: 'member.import',
    limit: 10,
  })
  t.same(
    entries.reverse().map((e) => [e.actor, e.door, e.space, e.after]),
    [
      [by.did, 'rest', w.space, '{"added":100,"updated":0,"removed":0}'],
      [by.did, 'rest', w.space, '{"added":50,"updated":0,"removed":0}'],
      [by.did, 'rest', w.space, '{"added":0,"updated":1,"removed":1}'],
    ],
    'slices of 100; an unchanged member is not counted',
  )
  t.match(await w.a.ctx.audit.verify(w.authority.did), { ok: true })
})

t.test('verify on a log being appended to meanwhile finds it whole', async (t) => {
  const w = await spaceWorld(t)
  const authority = w.authority.did
  for (let i = 0; i < 30; i++)
    await appendAlone(w.a.ctx, { authority, actor: OWNER_ACTOR, action: `before.${i}` })
  for (let round = 0; round < 10; round++) {
    const appends = Array.from({ length: 5 }, (_, i) =>
      appendAlone(w.a.ctx, { authority, actor: OWNER_ACTOR, action: `during.${round}.${i}` }),
    )
    const [result] = await Promise.all([w.a.ctx.audit.verify(authority), ...appends])
    t.match(result, { ok: true }, `round ${round}`)
  }
})

/**
 * `gatehouse space|member|manager|token …` and `gatehouse dev app`, run in process against a real
 * Gatehouse's database: the same services and rules as XRPC (presets from policies/, hosted-space
 * checks, credentials revoked when read is taken away), results as JSON, refusals as one line.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { CliUsageError, runCli } from '../src/cli.js'
import { loadConfig } from '../src/config.js'
import { spaceWorld, type SpaceWorld } from './_helpers/spaces.js'

type Tap = Parameters<typeof spaceWorld>[0]

/** Runs one command against the world's database and data dir; its stdout lines. */
async function cli(w: SpaceWorld, argv: string[], env: Record<string, string> = {}) {
  const { config, secrets } = loadConfig({
    GATEHOUSE_DATA_DIR: w.a.dataDir,
    GATEHOUSE_DATABASE_URL: w.a.database.url,
    GATEHOUSE_LOG_LEVEL: 'silent',
    ...env,
  })
  const out: string[] = []
  await runCli(argv, config, secrets, (l) => out.push(l), undefined)
  return out
}
const json = async (w: SpaceWorld, argv: string[]) => JSON.parse((await cli(w, argv)).join('\n'))

/** A world whose clock reads the wall clock, as the command's does. */
async function world(t: Tap) {
  const w = await spaceWorld(t)
  w.a.clock.set(Date.now())
  return w
}

t.test('space create from a preset, list, show, update, delete', async (t) => {
  const w = await world(t)
  const authority = w.authority.did
  const created = await json(w, [
    'space',
    'create',
    authority,
    'com.example.chat',
    '--skey',
    'lobby',
    '--preset',
    'public-read',
  ])
  const uri = `at://${authority}/space/com.example.chat/lobby`
  t.match(created, {
    uri,
    readPolicy: { $type: 'com.atproto.simplespace.defs#publicPolicy' },
    writePolicy: { $type: 'com.atproto.simplespace.defs#memberListPolicy' },
    members: 0,
  })
  t.same(await json(w, ['space', 'list', authority]), [uri, w.space].sort())
  t.equal((await json(w, ['space', 'show', uri])).uri, uri)
  const pinned = await json(w, [
    'space',
    'update',
    uri,
    '--preset',
    'app-pinned',
    '--client',
    'https://app.example/client.json',
  ])
  t.same(pinned.appAccess, {
    $type: 'com.atproto.simplespace.defs#allowList',
    allowed: ['https://app.example/client.json'],
  })
  t.same(await json(w, ['space', 'delete', uri]), { uri, deleted: true })
  t.same(await json(w, ['space', 'list', authority]), [w.space])
  await t.rejects(
    cli(w, ['space', 'show', uri]),
    new CliUsageError('SpaceNotFound: Space not found'),
  )

  await t.rejects(
    cli(w, ['space', 'create', authority, 'com.example.chat']),
    /--preset is one of: app-pinned, managing-app-gated, members-only, public-read/,
  )
  await t.rejects(
    cli(w, ['space', 'create', authority, 'com.example.chat', '--preset', 'nope']),
    /no preset named "nope"/,
  )
  await t.rejects(
    cli(w, ['space', 'create', authority, 'com.example.chat', '--preset', 'app-pinned']),
    /parameter "clients" is required/,
  )
  await t.rejects(
    cli(w, ['space', 'create', authority, 'not an nsid', '--preset', 'members-only']),
    /TYPE must be an NSID/,
  )
  await t.rejects(
    cli(w, ['space', 'create', 'did:web:elsewhere.example', 'a.b.c', '--preset', 'members-only']),
    /is not an active authority here/,
  )
  await t.rejects(cli(w, ['space', 'show']), new CliUsageError('space show needs SPACE'))
  await t.rejects(cli(w, ['space', 'frobnicate']), /^usage:/)
  await t.rejects(cli(w, ['space', 'list', '--bogus']), /Unknown option '--bogus'/)
})

t.test('members: add, update, remove, import (JSON lines and a JSON array), export', async (t) => {
  const w = await world(t)
  const [alice, bob, carol] = [
    'did:web:alice.example',
    'did:web:bob.example',
    'did:web:carol.example',
  ]
  t.same(await json(w, ['member', 'add', w.space, alice]), { did: alice, read: true, write: true })
  t.same(await json(w, ['member', 'update', w.space, alice, '--write', 'off']), {
    did: alice,
    read: true,
    write: false,
  })
  await t.rejects(cli(w, ['member', 'add', w.space, alice, '--read', 'yes']), /--read is on or off/)
  await t.rejects(cli(w, ['member', 'add', w.space, 'alice']), /not a DID: alice/)

  const lines = join(w.a.dataDir, 'members.ndjson')
  writeFileSync(
    lines,
    [
      { did: bob, read: true, write: true },
      { did: carol, read: true, write: false },
      { did: bob, read: false, write: true },
      { did: alice, remove: true },
    ]
      .map((l) => JSON.stringify(l))
      .join('\n'),
  )
  t.same(await json(w, ['member', 'import', w.space, lines]), {
    received: 4,
    changed: 3,
    batches: 1,
    unchanged: 1,
  })
  const array = join(w.a.dataDir, 'members.json')
  writeFileSync(array, JSON.stringify([{ did: carol, read: true, write: true }]))
  t.match(await json(w, ['member', 'import', w.space, array]), { received: 1, changed: 1 })
  t.same(
    (await cli(w, ['member', 'export', w.space])).map((l) => JSON.parse(l)),
    [
      { did: bob, read: false, write: true },
      { did: carol, read: true, write: true },
    ],
  )
  writeFileSync(lines, `${JSON.stringify({ did: bob, read: true })}\n`)
  await t.rejects(
    cli(w, ['member', 'import', w.space, lines]),
    /InvalidRequest: line 1: expected \{"did","read","write"\} or \{"did","remove":true\}/,
  )
  t.same(await json(w, ['member', 'remove', w.space, bob]), { did: bob, removed: true })
  t.equal((await json(w, ['space', 'show', w.space])).members, 1)
})

t.test('taking read away on the command line revokes live credentials', async (t) => {
  const w = await world(t)
  const [alice, bob] = [w.user('alice'), w.user('bob')]
  await cli(w, ['member', 'add', w.space, alice.did])
  await cli(w, ['member', 'add', w.space, bob.did])
  const a = await w.getCredential(alice)
  const b = await w.getCredential(bob)
  t.equal(a.status, 200, JSON.stringify(a.body))
  t.equal((await w.getSpace(a.body.credential as string, a.holder)).status, 200)

  await cli(w, ['member', 'remove', w.space, alice.did])
  t.equal((await w.getSpace(a.body.credential as string, a.holder)).status, 401, 'remove revokes')

  const file = join(w.a.dataDir, 'lose-read.ndjson')
  writeFileSync(file, JSON.stringify({ did: bob.did, read: false, write: true }))
  await cli(w, ['member', 'import', w.space, file])
  t.equal((await w.getSpace(b.body.credential as string, b.holder)).status, 401, 'import revokes')
})

t.test('managers of an authority: grant, list, revoke', async (t) => {
  const w = await world(t)
  const authority = w.authority.did
  const mod = 'did:web:mod.example'
  t.same(await json(w, ['manager', 'grant', authority, mod, '--role', 'moderator']), {
    authority,
    did: mod,
    role: 'moderator',
  })
  t.match(await json(w, ['manager', 'list', authority]), [{ did: mod, role: 'moderator' }])
  t.equal(await w.a.ctx.managers.roleOf(authority, mod), 'moderator', 'the XRPC check sees it')
  await t.rejects(
    cli(w, ['manager', 'grant', authority, mod, '--role', 'king']),
    /--role is owner or admin or moderator/,
  )
  await t.rejects(
    cli(w, ['manager', 'grant', 'did:web:nobody.example', mod, '--role', 'admin']),
    /AuthorityNotFound/,
  )
  t.same(await json(w, ['manager', 'revoke', authority, mod]), {
    authority,
    did: mod,
    revoked: true,
  })
  t.same(await json(w, ['manager', 'list', authority]), [])
})

t.test('API tokens: create (the secret once), list, revoke; the last owner stays', async (t) => {
  const w = await world(t)
  const authority = w.authority.did
  const owner = w.user('owner').did
  await cli(w, ['manager', 'grant', authority, owner, '--role', 'owner'])
  await t.rejects(cli(w, ['manager', 'revoke', authority, owner]), /last owner/)
  const made = await json(w, [
    'token',
    'create',
    authority,
    '--manager',
    owner,
    '--name',
    'ci',
    '--role',
    'admin',
  ])
  t.match(made, { token: /^gh_/, role: 'admin', name: 'ci', createdBy: owner })
  const res = await w.a.fetch(`/api/v1/authorities/${encodeURIComponent(authority)}/spaces`, {
    headers: { authorization: `Bearer ${made.token}` },
  })
  t.equal(res.status, 200, 'the token opens the REST API')
  const listed = await json(w, ['token', 'list', authority])
  t.match(listed, [{ id: made.id, name: 'ci' }])
  t.notOk(JSON.stringify(listed).includes(made.token), 'a listing never shows the secret')
  await t.rejects(
    cli(w, [
      'token',
      'create',
      authority,
      '--manager',
      w.user('nobody').did,
      '--name',
      'x',
      '--role',
      'admin',
    ]),
    /does not manage/,
  )
  t.same(await json(w, ['token', 'revoke', authority, made.id]), { id: made.id, revoked: true })
  const after = await w.a.fetch(`/api/v1/authorities/${encodeURIComponent(authority)}/spaces`, {
    headers: { authorization: `Bearer ${made.token}` },
  })
  t.equal(after.status, 401)
})

t.test('gatehouse dev app is refused in production', async (t) => {
  const w = await world(t)
  await t.rejects(
    cli(w, ['dev', 'app', w.space], {
      GATEHOUSE_ENV: 'production',
      GATEHOUSE_PUBLIC_URL: 'https://gatehouse.example',
      GATEHOUSE_ALLOW_KEK_IN_DATA_DIR: 'true',
    }),
    new CliUsageError('gatehouse dev is refused when GATEHOUSE_ENV=production'),
  )
})

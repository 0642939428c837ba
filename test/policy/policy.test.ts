/**
 * The decision layer, unit level: codec round-trips and refusals of unsupported variants, the order
 * of authorizeCredential (app perimeter before any user lookup), and the presets under policies/.
 */
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import {
  authorizeCredential,
  authorizeUser,
  AuthorizationError,
  isAppAllowed,
  type AuthorizeDeps,
} from '../../src/policy/authorize.js'
import {
  appAccessFromLex,
  appAccessToLex,
  PolicyCodecError,
  policyFromColumns,
  policyToColumns,
  userPolicyFromLex,
  userPolicyToLex,
} from '../../src/policy/codec.js'
import { PolicyRegistry, PresetError } from '../../src/policy/registry.js'
import type { SpaceConfig } from '../../src/policy/types.js'

const D = 'com.atproto.simplespace.defs'

t.test('codec: lexicon ↔ domain ↔ columns round-trip', async (t) => {
  for (const lex of [
    { $type: `${D}#publicPolicy` },
    { $type: `${D}#memberListPolicy` },
    { $type: `${D}#managingAppPolicy`, managingApp: 'did:web:app.example#forum' },
  ]) {
    t.same(userPolicyToLex(userPolicyFromLex(lex)), lex)
  }
  for (const lex of [
    { $type: `${D}#open` },
    { $type: `${D}#allowList`, allowed: ['https://a.example/c.json'] },
    { $type: 'dev.gatehouse.simplespace.defs#denyList', denied: ['https://b.example/c.json'] },
  ]) {
    t.same(appAccessToLex(appAccessFromLex(lex)), lex)
  }
  const policy = {
    readPolicy: { kind: 'managing-app' as const, managingApp: 'did:plc:abc' },
    writePolicy: { kind: 'public' as const },
    appAccess: { kind: 'allowList' as const, allowed: ['x', 'y'] },
  }
  const { columns, clientIds } = policyToColumns(policy)
  t.same(policyFromColumns(columns, clientIds), policy)
})

t.test('codec: unsupported variants are refused with the lexicon error names', async (t) => {
  const bad: [() => unknown, string][] = [
    [() => userPolicyFromLex({ $type: `${D}#somethingNew` }), 'UnsupportedPolicy'],
    [() => userPolicyFromLex({}), 'UnsupportedPolicy'],
    [
      () =>
        userPolicyFromLex({ $type: `${D}#managingAppPolicy`, managingApp: 'https://app.example' }),
      'UnsupportedPolicy',
    ],
    [() => appAccessFromLex({ $type: `${D}#blockAll` }), 'UnsupportedAppAccess'],
    [() => appAccessFromLex({ $type: `${D}#allowList`, allowed: 'x' }), 'UnsupportedAppAccess'],
    [
      () => appAccessFromLex({ $type: `${D}#allowList`, allowed: Array(1001).fill('x') }),
      'UnsupportedAppAccess',
    ],
  ]
  for (const [fn, error] of bad) {
    const err = t.throws(fn) as PolicyCodecError
    t.ok(err instanceof PolicyCodecError)
    t.equal(err.error, error)
  }
})

const config = (over: Partial<SpaceConfig> = {}): SpaceConfig => ({
  uri: 'at://did:web:a.example/space/x.y.z/k',
  authority: 'did:web:a.example',
  credentialTtlSec: 600,
  dpopCredentialTtlSec: 300,
  rosterVisibility: 'owner',
  createdAt: new Date(0),
  readPolicy: { kind: 'managing-app', managingApp: 'did:web:app.example' },
  writePolicy: { kind: 'member-list' },
  appAccess: { kind: 'allowList', allowed: ['good'] },
  ...over,
})

function deps(answer: boolean) {
  const asked: string[] = []
  const d: AuthorizeDeps = {
    isMember: async (_s, did, access) => (asked.push(`member:${did}:${access}`), answer),
    checkUserAccess: async (r) => (
      asked.push(`app:${r.user}:${r.access}:${r.clientId ?? '-'}`),
      answer
    ),
  }
  return { d, asked }
}

t.test(
  'authorizeCredential: the app perimeter first, so a refused app is never shown to the managing app',
  async (t) => {
    const { d, asked } = deps(true)
    await t.rejects(
      authorizeCredential({ config: config(), user: 'did:web:u', clientId: 'bad' }, d),
      new AuthorizationError('AppNotAuthorized'),
    )
    await t.rejects(
      authorizeCredential({ config: config(), user: 'did:web:u', clientId: undefined }, d),
      new AuthorizationError('AppNotAuthorized'),
    )
    t.same(asked, [], 'nobody was asked about the user')
    await authorizeCredential({ config: config(), user: 'did:web:u', clientId: 'good' }, d)
    t.same(asked, ['app:did:web:u:read:good'])
  },
)

t.test('authorizeUser: the authority is never locked out; each policy kind', async (t) => {
  const { d, asked } = deps(false)
  t.equal(await authorizeUser(config(), 'did:web:a.example', 'read', d), true)
  t.same(asked, [])
  t.equal(
    await authorizeUser(config({ readPolicy: { kind: 'public' } }), 'did:web:u', 'read', d),
    true,
  )
  t.equal(await authorizeUser(config(), 'did:web:u', 'write', d), false)
  t.same(asked, ['member:did:web:u:write'])
  await t.rejects(
    authorizeCredential(
      { config: config({ appAccess: { kind: 'open' } }), user: 'did:web:u', clientId: undefined },
      d,
    ),
    new AuthorizationError('UserNotAuthorized'),
  )
})

t.test('app access: open, allow list, deny list (which needs an attestation)', async (t) => {
  t.equal(isAppAllowed({ kind: 'open' }, undefined), true)
  t.equal(isAppAllowed({ kind: 'allowList', allowed: ['a'] }, 'a'), true)
  t.equal(isAppAllowed({ kind: 'allowList', allowed: ['a'] }, 'b'), false)
  t.equal(isAppAllowed({ kind: 'denyList', denied: ['a'] }, 'b'), true)
  t.equal(isAppAllowed({ kind: 'denyList', denied: ['a'] }, 'a'), false)
  t.equal(isAppAllowed({ kind: 'denyList', denied: ['a'] }, undefined), false)
})

t.test('presets: every file under policies/ loads and resolves', async (t) => {
  const r = PolicyRegistry.load()
  t.same(r.names().sort(), ['app-pinned', 'managing-app-gated', 'members-only', 'public-read'])
  t.same(r.resolve('members-only'), {
    readPolicy: { kind: 'member-list' },
    writePolicy: { kind: 'member-list' },
    appAccess: { kind: 'open' },
  })
  t.same(r.resolve('public-read').readPolicy, { kind: 'public' })
  t.same(r.resolve('app-pinned', { clients: ['https://a.example/c.json'] }), {
    readPolicy: { kind: 'member-list' },
    writePolicy: { kind: 'member-list' },
    appAccess: { kind: 'allowList', allowed: ['https://a.example/c.json'] },
    credentialTtlSec: 300,
  })
  t.same(
    r.resolve('managing-app-gated', { managingApp: 'did:web:app.example#forum' }).writePolicy,
    { kind: 'managing-app', managingApp: 'did:web:app.example#forum' },
  )
  t.throws(() => r.resolve('managing-app-gated'), PresetError, 'a missing parameter')
  t.throws(() => r.resolve('managing-app-gated', { managingApp: 'not a did' }), PolicyCodecError)
  t.throws(() => r.resolve('nope'), PresetError)
})

t.test('presets: a broken preset stops the load, naming its file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-presets-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const write = (name: string, body: unknown) =>
    writeFileSync(join(dir, name), JSON.stringify(body))
  const ok = {
    name: 'ok',
    description: 'fine',
    readPolicy: { $type: `${D}#publicPolicy` },
    writePolicy: { $type: `${D}#publicPolicy` },
    appAccess: { $type: `${D}#open` },
  }
  write('ok.json', ok)
  t.same(PolicyRegistry.load(dir).names(), ['ok'])
  write('bad.json', { ...ok, name: 'bad', readPolicy: { $type: `${D}#everyone` } })
  t.throws(() => PolicyRegistry.load(dir), /policies\/bad\.json: unsupported policy/)
  write('bad.json', { ...ok, name: 'other' })
  t.throws(() => PolicyRegistry.load(dir), /name must match the file name/)
  write('bad.json', {
    ...ok,
    name: 'bad',
    appAccess: { $type: `${D}#allowList`, allowed: '$clients' },
  })
  t.throws(() => PolicyRegistry.load(dir), /parameter "clients" is not declared/)
  write('bad.json', { ...ok, name: 'bad', extra: true })
  t.throws(() => PolicyRegistry.load(dir), /policies\/bad\.json/)
})

// The capability table every manager check goes through, and the rules of changing roles: who may
// grant what, and that an authority never loses its last owner (on SQLite and PostgreSQL).
import t from 'tap'
import {
  CAPABILITIES,
  MANAGER_ROLES,
  RoleChangeError,
  can,
  roleChangeRefusal,
  type Capability,
  type ManagerRole,
} from '../../src/authorities/managers.js'
import { TestArbiter } from '../_helpers/arbiter.js'
import { DidWebHost } from '../_helpers/identities.js'
import { registerAuthority } from '../_helpers/spaces.js'

/** The table as docs/rest-api.md states it: written out, not derived from the code. */
const EXPECTED: Record<Capability, ManagerRole[]> = {
  read: ['owner', 'admin', 'moderator'],
  membership: ['owner', 'admin', 'moderator'],
  credentials: ['owner', 'admin', 'moderator'],
  notify: ['owner', 'admin', 'moderator'],
  invites: ['owner', 'admin', 'moderator'],
  'join-requests': ['owner', 'admin', 'moderator'],
  tokens: ['owner', 'admin', 'moderator'],
  'bulk-membership': ['owner', 'admin'],
  'space-config': ['owner', 'admin'],
  roles: ['owner', 'admin'],
  audit: ['owner', 'admin'],
  authority: ['owner'],
}

t.test('every role × capability', async (t) => {
  t.same(Object.keys(CAPABILITIES).sort(), Object.keys(EXPECTED).sort(), 'no capability unlisted')
  for (const [capability, roles] of Object.entries(EXPECTED) as [Capability, ManagerRole[]][]) {
    for (const role of MANAGER_ROLES)
      t.equal(can(role, capability), roles.includes(role), `${role} ${capability}`)
    t.notOk(can(undefined, capability), `a non-manager has no ${capability}`)
  }
})

t.test('who may change which role', async (t) => {
  const roles = [...MANAGER_ROLES, undefined]
  for (const actor of roles)
    for (const from of roles)
      for (const to of roles) {
        const allowed =
          (actor === 'owner' || actor === 'admin') &&
          (actor === 'owner' || (from !== 'owner' && to !== 'owner'))
        t.equal(
          roleChangeRefusal(actor, from, to) === undefined,
          allowed,
          `${actor ?? 'nobody'} moves ${from ?? 'nobody'} to ${to ?? 'nobody'}`,
        )
      }
})

t.test('the last owner stays; owners beside them may go', async (t) => {
  const a = await TestArbiter.create(t)
  const web = await DidWebHost.start(t)
  const authority = web.create('authority')
  const [first, second, admin] = ['first', 'second', 'admin'].map((n) => web.create(n).did)
  await registerAuthority(a.ctx, authority.did, { atproto: authority.key })
  const m = a.ctx.managers
  await m.change(authority.did, first!, 'owner', 'operator')
  await m.change(authority.did, admin!, 'admin', 'owner')
  const roleOf = (did: string) => m.roleOf(authority.did, did)

  await t.rejects(m.change(authority.did, first!, 'admin', 'owner'), RoleChangeError)
  await t.rejects(m.change(authority.did, first!, undefined, 'operator'), /last owner/)
  t.equal(await roleOf(first!), 'owner', 'refused changes changed nothing')

  await t.rejects(m.change(authority.did, second!, 'owner', 'admin'), /only an owner/)
  await t.rejects(m.change(authority.did, first!, undefined, 'admin'), /only an owner/)
  await t.rejects(m.change(authority.did, admin!, 'moderator', 'moderator'), /owner or admin/)
  await m.change(authority.did, second!, 'moderator', 'admin')
  t.equal(await roleOf(second!), 'moderator', 'an admin grants below owner')

  await m.change(authority.did, second!, 'owner', 'owner')
  await m.change(authority.did, first!, undefined, 'owner')
  t.equal(await roleOf(first!), undefined, 'with a second owner, the first may go')
  await t.rejects(m.change(authority.did, second!, 'moderator', 'owner'), /last owner/)
})

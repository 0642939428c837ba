import type { KeyPurpose } from '../../src/authorities/authority-service.js'
import type { ManagerRole } from '../../src/authorities/managers.js'
import type { AppContext } from '../../src/context.js'
import type { Keypair } from '../../src/crypto/keypair.js'
import { parseJws } from '../../src/crypto/jws.js'
import { LtHash } from '../../src/crypto/lthash.js'
import { memberElement } from '../../src/members/member-list.js'
import type { SpacePolicy } from '../../src/policy/types.js'
import { loadConfig } from '../../src/config.js'
import { createContext } from '../../src/context.js'
import { createLogger } from '../../src/logger.js'
import { ROUTES } from '../../src/rest/routes.js'
import { TestArbiter, type TestLike } from './arbiter.js'
import { hex } from './hex.js'
import { DidWebHost, type WebIdentity } from './identities.js'
import { delegationToken, exchangeHeaders, newHolderKey, presentHeaders } from './tokens.js'

/**
 * Makes Gatehouse answer for `did` with the given keys, as an active authority held here (without a
 * DID document change): idempotent for the authority row; each call adds the keys it is given as
 * the active ones for their purposes.
 */
export async function registerAuthority(
  ctx: Pick<AppContext, 'db' | 'clock' | 'authorities'>,
  did: string,
  keys: Partial<Record<KeyPurpose, Keypair>>,
): Promise<void> {
  const now = ctx.clock.now()
  await ctx.db.transact(async (tx) => {
    await tx.authority.upsert({
      where: { did },
      create: { did, status: 'active', createdAt: now, updatedAt: now },
      update: { status: 'active', updatedAt: now },
    })
    await ctx.authorities.addKeys(did, keys, 'pending', tx)
    await ctx.authorities.promotePending(did, tx)
  })
  ctx.authorities.forget(did)
}

/**
 * A world for credential tests: a real Gatehouse, a did:web host for users and the authority, the
 * authority registered with Gatehouse (which holds its #atproto key), and a space whose key is
 * derived from the test's name.
 */
export interface SpaceWorld {
  a: TestArbiter
  web: DidWebHost
  authority: WebIdentity
  space: string
  now(): number
  user(name: string): WebIdentity
  /** The full exchange as a client does it: delegation token + exchange signature (+ attestation). */
  getCredential(
    user: WebIdentity,
    opts?: {
      space?: string
      bodySpace?: string
      attestation?: string
      holder?: Keypair
      token?: string
    },
  ): Promise<{ status: number; body: Record<string, unknown>; holder: Keypair; token: string }>
  /** getSpace with a credential, signed by its holder, audience = authority. */
  getSpace(
    credential: string,
    holder: Keypair,
    space?: string,
  ): Promise<{ status: number; body: Record<string, unknown> }>
}

export const MEMBERS_ONLY: SpacePolicy = {
  readPolicy: { kind: 'member-list' },
  writePolicy: { kind: 'member-list' },
  appAccess: { kind: 'open' },
}

export function slugOf(t: { name?: string }): string {
  return (
    (t.name ?? 'space')
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 60) || 'space'
  )
}

export async function spaceWorld(
  t: TestLike & { name?: string },
  opts: { policy?: SpacePolicy; env?: Record<string, string>; credentialTtlSec?: number } = {},
): Promise<SpaceWorld> {
  const web = await DidWebHost.start(t)
  const a = await TestArbiter.create(t, { env: opts.env })
  const authority = web.create('authority')
  await registerAuthority(a.ctx, authority.did, { atproto: authority.key })
  const config = await a.ctx.spaces.create({
    authority: authority.did,
    spaceType: 'com.example.forum',
    skey: slugOf(t),
    ...(opts.policy ?? MEMBERS_ONLY),
    credentialTtlSec: opts.credentialTtlSec,
  })
  const users = new Map<string, WebIdentity>()
  const world: SpaceWorld = {
    a,
    web,
    authority,
    space: config.uri,
    now: () => a.clock.nowSec(),
    user(name) {
      let u = users.get(name)
      if (!u) users.set(name, (u = web.create(name)))
      return u
    },
    async getCredential(user, o = {}) {
      const holder = o.holder ?? newHolderKey()
      const token =
        o.token ?? delegationToken({ user, space: o.space ?? world.space, nowSec: world.now() })
      const body: Record<string, unknown> = { space: o.bodySpace ?? o.space ?? world.space }
      if (o.attestation) body.clientAttestation = o.attestation
      const res = await a.fetch('/xrpc/com.atproto.space.getSpaceCredential', {
        method: 'POST',
        headers: { ...exchangeHeaders(token, holder), 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
      return {
        status: res.status,
        body: (await res.json()) as Record<string, unknown>,
        holder,
        token,
      }
    },
    async getSpace(credential, holder, space) {
      const q = new URLSearchParams({ space: space ?? world.space })
      const res = await a.fetch(`/xrpc/com.atproto.simplespace.getSpace?${q}`, {
        headers: presentHeaders(credential, authority.did, holder),
      })
      return { status: res.status, body: (await res.json()) as Record<string, unknown> }
    },
  }
  return world
}

export function decodeToken(token: string): {
  header: Record<string, unknown>
  payload: Record<string, unknown>
} {
  const { header, payload } = parseJws(token)
  return { header, payload }
}

/** A context of the test's own on the database and data dir of `env` (a process's), silent, destroyed at the end. */
export async function sideContext(t: TestLike, env: Record<string, string>): Promise<AppContext> {
  const { config, secrets } = loadConfig(env)
  const ctx = await createContext(config, secrets, {
    overrides: { logger: createLogger({ level: 'silent' }) },
  })
  t.teardown(() => ctx.destroy())
  return ctx
}

/**
 * A second Gatehouse context (no server) on the database a `gatehouse serve` child uses, holding a
 * did:web authority with a members-only space `skey`: what the process tests drive the child with.
 */
export async function sideWorld(t: TestLike, env: Record<string, string>, skey: string) {
  const ctx = await sideContext(t, env)
  const web = await DidWebHost.start(t)
  const authority = web.create('authority')
  await registerAuthority(ctx, authority.did, { atproto: authority.key })
  const { uri: space } = await ctx.spaces.create({
    authority: authority.did,
    spaceType: 'com.example.forum',
    skey,
    ...MEMBERS_ONLY,
  })
  return { ctx, web, authority, space }
}

/**
 * REST calls on the world's space (`sub` after `/spaces/{type}/{skey}`) with a fresh token of
 * `role` (made by the space's `owner` user, made its authority's owner), each 2xx answer checked
 * against the schema its OpenAPI entry is made from. Returns the call and the owner's DID.
 */
export async function spaceRest(
  t: { ok(value: unknown, message: string): unknown },
  w: SpaceWorld,
  o: { role?: ManagerRole; space?: string } = {},
) {
  const owner = w.user('owner').did
  await w.a.ctx.managers.change(w.authority.did, owner, 'owner', 'operator')
  const { token } = await w.a.ctx.tokens.create({
    authority: w.authority.did,
    createdBy: owner,
    creatorRole: 'owner',
    name: 'rest',
    role: o.role ?? 'moderator',
    space: o.space,
  })
  const path = `/api/v1/authorities/${encodeURIComponent(w.authority.did)}/spaces/${w.space.split('/space/')[1]}`
  const api = async (method: string, sub: string) => {
    const res = await w.a.fetch(`${path}${sub}`, {
      method,
      headers: { authorization: `Bearer ${token}` },
    })
    const body = (await res.json()) as any
    const route = ROUTES.find(
      (r) =>
        r.method === method &&
        new RegExp(`^/api/v1${r.path.replace(/\{\w+\}/g, '[^/]+')}$`).test(
          path + sub.split('?')[0],
        ),
    )
    if (res.status < 300)
      t.ok(route?.response?.safeParse(body).success, `${method} ${sub} as documented`)
    return { status: res.status, body }
  }
  return { api, owner }
}

/**
 * getSpaceCredential for `space` at the Gatehouse at `url` (a process of its own, on the real
 * clock) with delegation `token` (by default a fresh one from `user`), the exchange signed with
 * `holder` (by default a fresh key): the answer, with the token and key it used.
 */
export async function exchangeAt(
  url: string,
  space: string,
  o: { user?: WebIdentity; token?: string; holder?: Keypair },
) {
  const holder = o.holder ?? newHolderKey()
  const token =
    o.token ?? delegationToken({ user: o.user!, space, nowSec: Math.floor(Date.now() / 1000) })
  const res = await fetch(`${url}/xrpc/com.atproto.space.getSpaceCredential`, {
    method: 'POST',
    headers: { ...exchangeHeaders(token, holder), 'content-type': 'application/json' },
    body: JSON.stringify({ space }),
  })
  const text = await res.text()
  const body = (text ? JSON.parse(text) : {}) as {
    credential?: string
    error?: string
    message?: string
  }
  return { status: res.status, body, token, holder }
}

/** Whether `space`'s member digest is the one of the member table's rows (the view and its state agree). */
export async function memberDigestMatches(ctx: AppContext, space: string): Promise<boolean> {
  const rows = await ctx.db.prisma.spaceMember.findMany({ where: { space } })
  const h = new LtHash()
  for (const r of rows) h.add(memberElement(r.did, r))
  return hex(h.digest()) === hex((await ctx.spaces.members.state(space)).digest)
}

import { Readable } from 'node:stream'
import { z } from 'zod'
import { auditLine, type Actor, type AuditEntryView } from '../audit/audit-log.js'
import { didWebLocation } from '../authorities/did-web.js'
import { atLeast, MANAGER_ROLES, weaker } from '../authorities/managers.js'
import type { AuthorityView } from '../authorities/lifecycle.js'
import type { AppContext } from '../context.js'
import { ForbiddenError, InvalidRequestError, XrpcError } from '../errors.js'
import {
  importEntries,
  importLine,
  importMembers,
} from '../lexicon/dev/gatehouse/simplespace/bulk.js'
import { appAccess, userPolicy } from '../lexicon/com/atproto/simplespace/defs.js'
import { authorityView } from '../lexicon/dev/gatehouse/authority/defs.js'
import { listDeadLetters } from '../lexicon/dev/gatehouse/notify/listDeadLetters.js'
import { did, nsid, parseSpaceRef, recordKey } from '../lexicon/formats.js'
import { appAccessFromLex, userPolicyFromLex } from '../policy/codec.js'
import type { TokenView } from '../managers/tokens.js'
import {
  USED_BY_SHOWN,
  type BanView,
  type InviteView,
  type JoinRequestView,
} from '../spaces/admission.js'
import { joinRequestOut, joinRequestView } from '../lexicon/dev/gatehouse/space/defs.js'
import type { SpacePolicy } from '../policy/types.js'
import { LOGIN_ROUTES } from './login.js'
import { revocationFilter } from '../spaces/credentials.js'
import { getHostedSpace } from '../spaces/hosted.js'
import { lastDays, STATS_MAX_DAYS } from '../spaces/tally.js'
import { SYNCERS_SHOWN } from '../notify/delivery-tally.js'
import { nextTid } from '../spaces/tid.js'
import { spaceView } from '../spaces/view.js'
import { authorityOut } from '../xrpc/dev/gatehouse/authority/shared.js'
import { readJsonLines } from '../xrpc/ndjson.js'
import { authorize, restActor, route, type Principal, type RestRoute } from './route.js'

const role = z.enum(MANAGER_ROLES)
const limit = (max: number, dflt: number) =>
  z.coerce.number().int().min(1).max(max).default(dflt).describe(`page size, at most ${max}`)
const cursor = z.string().max(2048).optional().describe('from the previous page’s `cursor`')
const iso = z.string().describe('ISO 8601 date-time')

const authorityParams = z.object({ authority: did })
const spaceParams = authorityParams.extend({ type: nsid, skey: recordKey })
const memberParams = spaceParams.extend({ member: did })

/** The space URI of `/authorities/{authority}/spaces/{type}/{skey}`. */
function spaceUri(p: z.output<typeof spaceParams>): string {
  const uri = `at://${p.authority}/space/${p.type}/${p.skey}`
  if (!parseSpaceRef(uri)) throw new XrpcError(404, 'NotFound', `${uri} is not a space URI`)
  return uri
}

/** The active hosted space at a space path, once the caller may `capability` on it. */
async function space(
  ctx: AppContext,
  principal: Principal,
  p: z.output<typeof spaceParams>,
  capability: Parameters<typeof authorize>[3],
) {
  const uri = spaceUri(p)
  await authorize(ctx, principal, p.authority, capability, uri)
  return getHostedSpace(ctx, uri)
}

const spaceOut = z.object({
  uri: z.string(),
  readPolicy: userPolicy,
  writePolicy: userPolicy,
  appAccess,
  credentialTtlSec: z.number().int(),
  dpopCredentialTtlSec: z.number().int(),
  rosterVisibility: z.enum(['owner', 'members', 'count', 'public']),
  members: z.number().int(),
  createdAt: iso,
})
const memberOut = z.object({ did: z.string(), read: z.boolean(), write: z.boolean() })
const managerOut = z.object({ did: z.string(), role, createdAt: iso })
const tokenOut = z.object({
  id: z.string(),
  name: z.string(),
  role,
  space: z.string().nullable(),
  createdBy: z.string(),
  createdAt: iso,
  expiresAt: iso.nullable(),
  revokedAt: iso.nullable(),
  lastUsedAt: iso.nullable(),
})
const isoOrNull = (d: Date | null) => d?.toISOString() ?? null
const statsQuery = z.object({
  days: z.coerce
    .number()
    .int()
    .min(1)
    .max(STATS_MAX_DAYS)
    .default(30)
    .describe(`how many UTC days, ending today, at most ${STATS_MAX_DAYS}`),
})
const day = z.string().describe('a UTC day, YYYY-MM-DD')
const deliveriesOut = z.object({ delivered: z.number().int(), failed: z.number().int() })
const auditEntryOut = z.object({
  authority: z.string(),
  seq: z.number().int(),
  at: iso,
  actor: z.string().describe('a DID, `operator` (the CLI) or `system`'),
  // Plain strings, not enums: a tampered entry must still be readable, to be looked at.
  door: z.string().describe('rest, xrpc, cli or system'),
  action: z.string(),
  space: z.string().nullable(),
  subject: z.string().nullable(),
  before: z.string().nullable().describe('JSON text, as hashed'),
  after: z.string().nullable().describe('JSON text, as hashed'),
  outcome: z.string().describe('ok or refused'),
  reason: z.string().nullable(),
  prevHash: z.string().describe('hex'),
  hash: z.string().describe('hex: SHA-256, see docs/audit.md'),
})
const auditOut = (e: AuditEntryView) => ({ ...e, at: e.at.toISOString() })

/** A policy from a preset (with its parameters) or given in full, in lexicon form. */
const policyInput = z.object({
  preset: z.string().max(100).optional().describe('a preset from policies/'),
  managingApp: z.string().max(2048).optional().describe('the preset’s managingApp parameter'),
  clients: z.array(z.string().max(2048)).max(100).optional().describe('the preset’s clients'),
  readPolicy: userPolicy.optional(),
  writePolicy: userPolicy.optional(),
  appAccess: appAccess.optional(),
})

function policyFrom(ctx: AppContext, input: z.output<typeof policyInput>): Partial<SpacePolicy> {
  if (input.preset !== undefined)
    return ctx.presets.resolve(input.preset, {
      managingApp: input.managingApp,
      clients: input.clients,
    })
  const out: Partial<SpacePolicy> = {}
  if (input.readPolicy) out.readPolicy = userPolicyFromLex(input.readPolicy)
  if (input.writePolicy) out.writePolicy = userPolicyFromLex(input.writePolicy)
  if (input.appAccess) out.appAccess = appAccessFromLex(input.appAccess)
  return out
}

/** The last item's key as the next page's cursor, when the page was full. */
const next = <T>(items: T[], max: number, key: (t: T) => string) =>
  items.length === max && items.length > 0 ? { cursor: key(items[items.length - 1]!) } : {}

/** `POST /authorities/{authority}/{step}`: a lifecycle step, for owners (the `authority` capability). */
function lifecycle<B extends z.ZodObject>(
  step: string,
  summary: string,
  body: B,
  run: (ctx: AppContext, did: string, body: z.output<B>, by: Actor) => Promise<AuthorityView>,
): RestRoute {
  return route({
    method: 'POST',
    path: `/authorities/{authority}/${step}`,
    tag: 'authorities',
    summary,
    params: authorityParams,
    body,
    response: authorityView,
    async handler({ ctx, principal, params, body }) {
      await authorize(ctx, principal, params.authority, 'authority')
      const by = restActor(principal)
      return authorityOut(await run(ctx, params.authority, body as z.output<B>, by))
    },
  })
}

const inviteParams = spaceParams.extend({ id: z.string().max(64) })
const requestParams = spaceParams.extend({ id: z.string().max(64) })
const inviteOut = z.object({
  id: z.string(),
  read: z.boolean(),
  write: z.boolean(),
  maxUses: z.number().int().nullable().describe('null: no limit'),
  uses: z.number().int(),
  expiresAt: iso,
  createdBy: z.string(),
  createdAt: iso,
  revokedAt: iso.nullable(),
  usedBy: z
    .array(z.object({ did: z.string(), at: iso }))
    .describe(`who accepted it, newest first (the latest ${USED_BY_SHOWN})`),
})
const requestOut = joinRequestView.extend({ decidedBy: z.string().optional() })
const banOut = z.object({
  did: z.string(),
  reason: z.string().nullable(),
  expiresAt: iso.nullable().describe('null: until lifted'),
  createdBy: z.string(),
  createdAt: iso,
})
const reason = z.string().max(1000)

/** Invites, join requests and bans of a space (issue #25), through ctx.admission. */
const ADMISSION_ROUTES: RestRoute[] = [
  route({
    method: 'GET',
    path: '/authorities/{authority}/spaces/{type}/{skey}/invites',
    tag: 'invites',
    summary: 'The space’s invites, newest first, with their uses (never their codes)',
    params: spaceParams,
    query: z.object({ limit: limit(100, 50), cursor }),
    response: z.object({ invites: z.array(inviteOut), cursor: z.string().optional() }),
    async handler({ ctx, principal, params, query }) {
      const config = await space(ctx, principal, params, 'invites')
      const rows = await ctx.admission.listInvites(config.uri, query.limit, query.cursor)
      const invites = rows.map(inviteView)
      return { invites, ...next(invites, query.limit, (i) => i.id) }
    },
  }),
  route({
    method: 'POST',
    path: '/authorities/{authority}/spaces/{type}/{skey}/invites',
    tag: 'invites',
    summary: 'Create an invite: its code and link are in this answer only',
    params: spaceParams,
    body: z.object({
      write: z.boolean().default(false).describe('grant write as well as read'),
      maxUses: z
        .number()
        .int()
        .min(1)
        .max(100_000)
        .nullable()
        .default(1)
        .describe('how many may accept it; null: no limit'),
      expiresAt: z.iso
        .datetime({ offset: true })
        .optional()
        .describe('by default in 7 days; at most a year away'),
    }),
    response: inviteOut.extend({
      code: z.string().optional().describe('never kept, so absent from a replay'),
      link: z.string().optional().describe('`{public URL}/join/{code}`; absent from a replay'),
    }),
    status: 201,
    idempotent: true,
    secret: ['code', 'link'],
    async handler({ ctx, principal, params, body }) {
      const config = await space(ctx, principal, params, 'invites')
      const { code, view } = await ctx.admission.createInvite(
        config,
        {
          write: body.write,
          maxUses: body.maxUses,
          expiresAt: body.expiresAt ? new Date(body.expiresAt) : undefined,
        },
        restActor(principal),
      )
      return { ...inviteView(view), code, link: `${ctx.cfg.service.publicUrl}/join/${code}` }
    },
  }),
  route({
    method: 'POST',
    path: '/authorities/{authority}/spaces/{type}/{skey}/invites/{id}/revoke',
    tag: 'invites',
    summary: 'Revoke an invite: it can no longer be accepted (its members stay)',
    params: inviteParams,
    async handler({ ctx, principal, params }) {
      const config = await space(ctx, principal, params, 'invites')
      if (!(await ctx.admission.revokeInvite(config.uri, params.id, restActor(principal))))
        throw new XrpcError(404, 'InviteNotFound', `no invite ${params.id} in ${config.uri}`)
    },
  }),
  route({
    method: 'GET',
    path: '/authorities/{authority}/spaces/{type}/{skey}/join-requests',
    tag: 'join-requests',
    summary: 'Requests to join, oldest first; `status` keeps one kind',
    params: spaceParams,
    query: z.object({
      limit: limit(1000, 100),
      cursor,
      status: z.enum(['pending', 'approved', 'denied']).optional(),
    }),
    response: z.object({ requests: z.array(requestOut), cursor: z.string().optional() }),
    async handler({ ctx, principal, params, query }) {
      const config = await space(ctx, principal, params, 'join-requests')
      const rows = await ctx.admission.listRequests(config.uri, query)
      const requests = rows.map(requestView)
      return { requests, ...next(requests, query.limit, (r) => r.id) }
    },
  }),
  route({
    method: 'POST',
    path: '/authorities/{authority}/spaces/{type}/{skey}/join-requests/{id}/approve',
    tag: 'join-requests',
    summary: 'Approve a pending request: the requester becomes a member with these flags',
    params: requestParams,
    body: z.object({ read: z.boolean().default(true), write: z.boolean().default(false) }),
    response: requestOut,
    async handler({ ctx, principal, params, body }) {
      const config = await space(ctx, principal, params, 'join-requests')
      return requestView(await ctx.admission.approve(config, params.id, body, restActor(principal)))
    },
  }),
  route({
    method: 'POST',
    path: '/authorities/{authority}/spaces/{type}/{skey}/join-requests/{id}/deny',
    tag: 'join-requests',
    summary: 'Deny a pending request; the requester sees the reason',
    params: requestParams,
    body: z.object({ reason: reason.optional() }),
    response: requestOut,
    async handler({ ctx, principal, params, body }) {
      const config = await space(ctx, principal, params, 'join-requests')
      const denied = await ctx.admission.deny(
        config.uri,
        params.id,
        body.reason ?? null,
        restActor(principal),
      )
      return requestView(denied)
    },
  }),
  route({
    method: 'GET',
    path: '/authorities/{authority}/spaces/{type}/{skey}/join-settings',
    tag: 'join-requests',
    summary: 'Whether the space takes join requests (off unless turned on)',
    params: spaceParams,
    response: z.object({ open: z.boolean() }),
    async handler({ ctx, principal, params }) {
      const config = await space(ctx, principal, params, 'read')
      return { open: await ctx.admission.joinRequestsOpen(config.uri) }
    },
  }),
  route({
    method: 'PUT',
    path: '/authorities/{authority}/spaces/{type}/{skey}/join-settings',
    tag: 'join-requests',
    summary: 'Turn join requests on or off (pending ones stay to be decided)',
    params: spaceParams,
    body: z.object({ open: z.boolean() }),
    response: z.object({ open: z.boolean() }),
    async handler({ ctx, principal, params, body }) {
      const config = await space(ctx, principal, params, 'space-config')
      await ctx.admission.setJoinRequestsOpen(config.uri, body.open, restActor(principal))
      return body
    },
  }),
  route({
    method: 'GET',
    path: '/authorities/{authority}/spaces/{type}/{skey}/bans',
    tag: 'bans',
    summary: 'Bans in DID order, expired ones included (they no longer apply)',
    params: spaceParams,
    query: z.object({ limit: limit(1000, 100), cursor }),
    response: z.object({ bans: z.array(banOut), cursor: z.string().optional() }),
    async handler({ ctx, principal, params, query }) {
      const config = await space(ctx, principal, params, 'membership')
      const bans = (await ctx.admission.listBans(config.uri, query.limit, query.cursor)).map(
        banView,
      )
      return { bans, ...next(bans, query.limit, (b) => b.did) }
    },
  }),
  route({
    method: 'PUT',
    path: '/authorities/{authority}/spaces/{type}/{skey}/bans/{member}',
    tag: 'bans',
    summary:
      'Ban a DID: removed if a member, its credentials revoked, its invites and requests refused',
    params: memberParams,
    body: z.object({
      reason: reason.optional(),
      expiresAt: z.iso.datetime({ offset: true }).optional().describe('absent: until lifted'),
    }),
    response: banOut,
    async handler({ ctx, principal, params, body }) {
      const config = await space(ctx, principal, params, 'membership')
      const ban = await ctx.admission.ban(
        config,
        params.member,
        {
          reason: body.reason ?? null,
          expiresAt: body.expiresAt ? new Date(body.expiresAt) : null,
        },
        restActor(principal),
      )
      return banView(ban)
    },
  }),
  route({
    method: 'DELETE',
    path: '/authorities/{authority}/spaces/{type}/{skey}/bans/{member}',
    tag: 'bans',
    summary: 'Lift a ban',
    params: memberParams,
    async handler({ ctx, principal, params }) {
      const config = await space(ctx, principal, params, 'membership')
      if (!(await ctx.admission.lift(config.uri, params.member, restActor(principal))))
        throw new XrpcError(404, 'NotFound', `${params.member} is not banned from ${config.uri}`)
    },
  }),
]

export const ROUTES: RestRoute[] = [
  ...LOGIN_ROUTES,
  route({
    method: 'GET',
    path: '/me',
    tag: 'session',
    summary: 'Who is calling, and the authorities they manage',
    response: z.object({
      did: z.string(),
      via: z.enum(['session', 'token']),
      authorities: z.array(z.object({ did: z.string(), role })),
    }),
    async handler({ ctx, principal }) {
      const all = await ctx.managers.authoritiesOf(principal.did)
      const token = principal.kind === 'token' ? principal.token : undefined
      const authorities = all.flatMap(({ authority, role }) => {
        if (!token) return [{ did: authority, role }]
        return token.authority === authority
          ? [{ did: authority, role: weaker(role, token.role) }]
          : []
      })
      return { did: principal.did, via: principal.kind, authorities }
    },
  }),
  route({
    method: 'GET',
    path: '/authorities',
    tag: 'authorities',
    summary: 'The authorities the caller manages, with its role and their state',
    query: z.object({ limit: limit(100, 50), cursor }),
    response: z.object({
      authorities: z.array(
        z.object({ did: z.string(), role, status: z.string(), handle: z.string().nullable() }),
      ),
      cursor: z.string().optional(),
    }),
    async handler({ ctx, principal, query }) {
      const mine = await ctx.managers.authoritiesOf(principal.did, query.limit, query.cursor)
      const authorities = []
      for (const { authority, role } of mine) {
        // A token shows its own authority only, with at most its own role.
        if (principal.kind === 'token' && principal.token.authority !== authority) continue
        const acting = principal.kind === 'token' ? weaker(role, principal.token.role) : role
        const record = await ctx.authorities.record(authority)
        if (record)
          authorities.push({
            did: authority,
            role: acting,
            status: record.status,
            handle: record.handle,
          })
      }
      return { authorities, ...next(mine, query.limit, (m) => m.authority) }
    },
  }),
  route({
    method: 'GET',
    path: '/authorities/{authority}',
    tag: 'authorities',
    summary: 'An authority: its state and public keys',
    params: authorityParams,
    response: authorityView,
    async handler({ ctx, principal, params }) {
      await authorize(ctx, principal, params.authority, 'read')
      return authorityOut(await ctx.lifecycle.describe(params.authority))
    },
  }),
  route({
    method: 'GET',
    path: '/authorities/{authority}/did-document',
    tag: 'authorities',
    summary: 'The authority’s DID document as published now (PLC directory or did:web host)',
    params: authorityParams,
    response: z.object({
      document: z.record(z.string(), z.unknown()).optional(),
      error: z.string().optional().describe('why it could not be read, instead of `document`'),
    }),
    async handler({ ctx, principal, params }) {
      await authorize(ctx, principal, params.authority, 'read')
      const did = params.authority
      // A did:web on one of Gatehouse's own hosts is published as served; any other is fetched.
      const loc = did.startsWith('did:web:') ? didWebLocation(did) : undefined
      const ours = loc && ctx.cfg.authorities.didWebHosts.includes(loc.host)
      const served = ours ? await ctx.lifecycle.webDocument(did) : undefined
      if (served) return { document: served as Record<string, unknown> }
      try {
        return { document: { ...(await ctx.idResolver.resolve(did, { forceRefresh: true })) } }
      } catch (err) {
        return { error: (err as Error).message }
      }
    },
  }),
  lifecycle(
    'activate',
    'Activate the authority (its DID document must name Gatehouse)',
    z.object({}),
    (ctx, did, _body, by) => ctx.lifecycle.activate(did, by),
  ),
  lifecycle(
    'deactivate',
    'Deactivate the authority: its spaces stop issuing credentials',
    z.object({}),
    (ctx, did, _body, by) => ctx.lifecycle.deactivate(did, by),
  ),
  lifecycle(
    'rotate-signing-key',
    'Replace a signing key of the authority',
    z.object({ purpose: z.enum(['atproto', 'atproto_space']).default('atproto') }),
    (ctx, did, body, by) => ctx.lifecycle.rotateSigningKey(did, body.purpose, by),
  ),
  lifecycle(
    'rotate-rotation-keys',
    'did:plc: replace Gatehouse’s rotation key; set or remove (null) the owner’s',
    z.object({ ownerRotationKey: z.string().max(200).nullable().optional() }),
    (ctx, did, body, by) => ctx.lifecycle.rotateRotationKeys(did, body, by),
  ),
  lifecycle(
    'transfer',
    'Hand the DID over: new rotation keys and space host endpoint; Gatehouse’s keys dropped',
    z.object({
      rotationKeys: z.array(z.string().max(200)).max(10).optional(),
      endpoint: z.url().max(2048).optional(),
    }),
    (ctx, did, body, by) =>
      ctx.lifecycle.transfer(
        did,
        {
          rotationKeys: body.rotationKeys,
          services: body.endpoint
            ? { atproto_space_host: { type: 'AtprotoSpaceHost', endpoint: body.endpoint } }
            : undefined,
        },
        by,
      ),
  ),
  route({
    method: 'PATCH',
    path: '/authorities/{authority}',
    tag: 'authorities',
    summary: 'Change an authority: whether its DID document names Gatehouse as its PDS',
    params: authorityParams,
    body: z.object({ pdsService: z.boolean() }),
    response: authorityView,
    async handler({ ctx, principal, params, body }) {
      await authorize(ctx, principal, params.authority, 'authority')
      const { authority } = params
      const by = restActor(principal)
      return authorityOut(await ctx.lifecycle.setPdsService(authority, body.pdsService, by))
    },
  }),
  route({
    method: 'GET',
    path: '/authorities/{authority}/spaces',
    tag: 'spaces',
    summary: 'The authority’s spaces, with member counts',
    params: authorityParams,
    query: z.object({ limit: limit(100, 50), cursor }),
    response: z.object({ spaces: z.array(spaceOut), cursor: z.string().optional() }),
    async handler({ ctx, principal, params, query }) {
      await authorize(ctx, principal, params.authority, 'read')
      const configs = await ctx.spaces.page(params.authority, query.limit, query.cursor)
      const spaces = await Promise.all(configs.map((c) => spaceView(ctx, c)))
      return { spaces, ...next(spaces, query.limit, (s) => s.uri) }
    },
  }),
  route({
    method: 'POST',
    path: '/authorities/{authority}/spaces',
    tag: 'spaces',
    summary: 'Create a space from a preset or a full policy',
    params: authorityParams,
    body: policyInput.extend({ spaceType: nsid, skey: recordKey.optional() }),
    response: spaceOut,
    status: 201,
    idempotent: true,
    async handler({ ctx, principal, params, body }) {
      await authorize(ctx, principal, params.authority, 'space-config')
      const policy = policyFrom(ctx, body)
      if (!policy.readPolicy || !policy.writePolicy || !policy.appAccess)
        throw new InvalidRequestError('give a preset, or readPolicy, writePolicy and appAccess')
      const config = await ctx.spaces.create(
        {
          ...(policy as SpacePolicy),
          authority: params.authority,
          spaceType: body.spaceType,
          skey: body.skey ?? nextTid(ctx.clock.nowMs()),
        },
        restActor(principal),
      )
      return spaceView(ctx, config)
    },
  }),
  route({
    method: 'GET',
    path: '/authorities/{authority}/spaces/{type}/{skey}',
    tag: 'spaces',
    summary: 'A space’s configuration',
    params: spaceParams,
    response: spaceOut,
    async handler({ ctx, principal, params }) {
      return spaceView(ctx, await space(ctx, principal, params, 'read'))
    },
  }),
  route({
    method: 'PATCH',
    path: '/authorities/{authority}/spaces/{type}/{skey}',
    tag: 'spaces',
    summary: 'Change a space’s policy (a preset, or any of its parts)',
    params: spaceParams,
    body: policyInput,
    response: spaceOut,
    async handler({ ctx, principal, params, body }) {
      const config = await space(ctx, principal, params, 'space-config')
      const change = policyFrom(ctx, body)
      return spaceView(
        ctx,
        await ctx.manager.updatePolicy(config.uri, change, restActor(principal)),
      )
    },
  }),
  route({
    method: 'PUT',
    path: '/authorities/{authority}/spaces/{type}/{skey}/roster-visibility',
    tag: 'spaces',
    summary:
      'Who may read the roster: owner (managers only), members, count (the count alone), public',
    params: spaceParams,
    body: z.object({ rosterVisibility: spaceOut.shape.rosterVisibility }),
    response: spaceOut,
    async handler({ ctx, principal, params, body }) {
      const config = await space(ctx, principal, params, 'space-config')
      const by = restActor(principal)
      await ctx.spaces.setRosterVisibility(config.uri, body.rosterVisibility, by)
      return spaceView(ctx, await getHostedSpace(ctx, config.uri))
    },
  }),
  route({
    method: 'DELETE',
    path: '/authorities/{authority}/spaces/{type}/{skey}',
    tag: 'spaces',
    summary: 'Delete a space: its members go, its credentials are revoked, syncers are told',
    params: spaceParams,
    async handler({ ctx, principal, params }) {
      const config = await space(ctx, principal, params, 'space-config')
      if (await ctx.manager.deleteSpace(config.uri, restActor(principal)))
        await ctx.notify.spaceDeleted(config.uri)
    },
  }),
  route({
    method: 'GET',
    path: '/authorities/{authority}/spaces/{type}/{skey}/members',
    tag: 'members',
    summary: 'Members in DID order; `search` keeps DIDs that start with it',
    params: spaceParams,
    query: z.object({ limit: limit(1000, 100), cursor, search: z.string().max(2048).optional() }),
    response: z.object({ members: z.array(memberOut), cursor: z.string().optional() }),
    async handler({ ctx, principal, params, query }) {
      const config = await space(ctx, principal, params, 'read')
      const members = await ctx.spaces.members.list(
        config.uri,
        query.limit,
        query.cursor,
        query.search,
      )
      return { members, ...next(members, query.limit, (m) => m.did) }
    },
  }),
  route({
    method: 'PUT',
    path: '/authorities/{authority}/spaces/{type}/{skey}/members/{member}',
    tag: 'members',
    summary: 'Add a member or change its access (read and write default to true)',
    params: memberParams,
    body: z.object({ read: z.boolean().default(true), write: z.boolean().default(true) }),
    response: memberOut,
    async handler({ ctx, principal, params, body }) {
      const config = await space(ctx, principal, params, 'membership')
      await ctx.manager.putMember(config, params.member, body, restActor(principal))
      return { did: params.member, ...body }
    },
  }),
  route({
    method: 'DELETE',
    path: '/authorities/{authority}/spaces/{type}/{skey}/members/{member}',
    tag: 'members',
    summary: 'Remove a member (its live credentials are revoked)',
    params: memberParams,
    async handler({ ctx, principal, params }) {
      await ctx.manager.removeMember(
        await space(ctx, principal, params, 'membership'),
        params.member,
        restActor(principal),
      )
    },
  }),
  route({
    method: 'POST',
    path: '/authorities/{authority}/spaces/{type}/{skey}/members/import',
    tag: 'members',
    summary: 'Bulk import: JSON lines of {did, read, write} or {did, remove: true}',
    params: spaceParams,
    body: importLine,
    bodyEncoding: 'application/x-ndjson',
    response: importMembers.output,
    async handler({ ctx, principal, params, body }) {
      const config = await space(ctx, principal, params, 'bulk-membership')
      const lines = readJsonLines(body as never, { maxLineBytes: 4096, maxLines: 10_000_000 })
      return ctx.manager.importMembers(config, importEntries(lines), restActor(principal))
    },
  }),
  route({
    method: 'GET',
    path: '/authorities/{authority}/spaces/{type}/{skey}/members/export',
    tag: 'members',
    summary: 'The member list as JSON lines, in the import format',
    params: spaceParams,
    response: memberOut,
    responseEncoding: 'application/x-ndjson',
    async handler({ ctx, principal, params }) {
      // The whole list is what paging with `read` shows anyway (and XRPC exportMembers).
      const config = await space(ctx, principal, params, 'read')
      const members = ctx.spaces.members.iterate(config.uri)
      const lines = (async function* () {
        for await (const m of members) yield `${JSON.stringify(m)}\n`
      })()
      return Readable.from(lines) as never
    },
  }),
  route({
    method: 'GET',
    path: '/authorities/{authority}/managers',
    tag: 'roles',
    summary: 'The authority’s managers and their roles',
    params: authorityParams,
    query: z.object({ limit: limit(1000, 100), cursor }),
    response: z.object({ managers: z.array(managerOut), cursor: z.string().optional() }),
    async handler({ ctx, principal, params, query }) {
      await authorize(ctx, principal, params.authority, 'read')
      const rows = await ctx.managers.list(params.authority, query.limit, query.cursor)
      const managers = rows.map((m) => ({
        did: m.did,
        role: m.role as z.output<typeof role>,
        createdAt: m.createdAt.toISOString(),
      }))
      return { managers, ...next(managers, query.limit, (m) => m.did) }
    },
  }),
  route({
    method: 'PUT',
    path: '/authorities/{authority}/managers/{member}',
    tag: 'roles',
    summary: 'Grant a role or change it (only owners grant or touch owner)',
    params: authorityParams.extend({ member: did }),
    body: z.object({ role }),
    response: z.object({ did: z.string(), role }),
    async handler({ ctx, principal, params, body }) {
      const actor = await authorize(ctx, principal, params.authority, 'roles')
      await ctx.managers.change(
        params.authority,
        params.member,
        body.role,
        actor,
        restActor(principal),
      )
      return { did: params.member, role: body.role }
    },
  }),
  route({
    method: 'DELETE',
    path: '/authorities/{authority}/managers/{member}',
    tag: 'roles',
    summary: 'Remove a manager (never the last owner)',
    params: authorityParams.extend({ member: did }),
    async handler({ ctx, principal, params }) {
      const actor = await authorize(ctx, principal, params.authority, 'roles')
      await ctx.managers.change(
        params.authority,
        params.member,
        undefined,
        actor,
        restActor(principal),
      )
    },
  }),
  route({
    method: 'GET',
    path: '/authorities/{authority}/tokens',
    tag: 'tokens',
    summary: 'The authority’s API tokens (never their secrets)',
    params: authorityParams,
    query: z.object({ limit: limit(100, 50), cursor }),
    response: z.object({ tokens: z.array(tokenOut), cursor: z.string().optional() }),
    async handler({ ctx, principal, params, query }) {
      await authorize(ctx, principal, params.authority, 'tokens')
      const tokens = (await ctx.tokens.list(params.authority, query.limit, query.cursor)).map(
        tokenView,
      )
      return { tokens, ...next(tokens, query.limit, (t) => t.id) }
    },
  }),
  route({
    method: 'POST',
    path: '/authorities/{authority}/tokens',
    tag: 'tokens',
    summary: 'Create an API token: its secret is in this answer only',
    params: authorityParams,
    body: z.object({
      name: z.string().min(1).max(100),
      role,
      space: z.string().max(2048).optional().describe('a space URI to limit the token to'),
      expiresAt: z.iso.datetime({ offset: true }).optional(),
    }),
    response: tokenOut.extend({
      token: z
        .string()
        .optional()
        .describe('the secret (Authorization: Bearer …); never kept, so absent from a replay'),
    }),
    status: 201,
    idempotent: true,
    secret: ['token'],
    async handler({ ctx, principal, params, body }) {
      const creatorRole = await authorize(ctx, principal, params.authority, 'tokens', body.space)
      if (body.space !== undefined && parseSpaceRef(body.space)?.authority !== params.authority)
        throw new InvalidRequestError(`space must be a space URI of ${params.authority}`)
      const { token, view } = await ctx.tokens.create(
        {
          authority: params.authority,
          createdBy: principal.did,
          creatorRole,
          name: body.name,
          role: body.role,
          space: body.space,
          expiresAt: body.expiresAt ? new Date(body.expiresAt) : undefined,
          // A token made by a token never outlives it.
          parent: principal.kind === 'token' ? principal.token : undefined,
        },
        restActor(principal),
      )
      return { ...tokenView(view), token }
    },
  }),
  route({
    method: 'DELETE',
    path: '/authorities/{authority}/tokens/{id}',
    tag: 'tokens',
    summary:
      'Revoke an API token, and every token it made (one’s own, or of a role not above one’s)',
    params: authorityParams.extend({ id: z.string().max(64) }),
    async handler({ ctx, principal, params }) {
      const actor = await authorize(ctx, principal, params.authority, 'tokens')
      const target = await ctx.tokens.get(params.authority, params.id)
      if (!target)
        throw new XrpcError(404, 'TokenNotFound', `no token ${params.id} on ${params.authority}`)
      if (target.createdBy !== principal.did && !atLeast(actor, target.role)) {
        const reason = `a ${actor} may not revoke another manager's ${target.role} token`
        await ctx.audit.recordRefusal({
          authority: params.authority,
          actor: restActor(principal),
          action: 'token.revoke',
          subject: params.id,
          reason,
        })
        throw new ForbiddenError(reason)
      }
      await ctx.tokens.revoke(params.authority, params.id, restActor(principal))
    },
  }),
  route({
    method: 'GET',
    path: '/authorities/{authority}/spaces/{type}/{skey}/credentials',
    tag: 'credentials',
    summary: 'Space credentials issued, newest first',
    params: spaceParams,
    query: z.object({ limit: limit(1000, 100), cursor, user: did.optional() }),
    response: z.object({
      credentials: z.array(
        z.object({
          jti: z.string(),
          user: z.string(),
          clientId: z.string().nullable(),
          issuedAt: iso,
          expiresAt: iso,
          revokedAt: iso.nullable(),
        }),
      ),
      cursor: z.string().optional(),
    }),
    async handler({ ctx, principal, params, query }) {
      const config = await space(ctx, principal, params, 'credentials')
      const rows = await ctx.credentials.list(config.uri, query)
      const credentials = rows.map((r) => ({
        jti: r.jti,
        user: r.userDid,
        clientId: r.clientId,
        issuedAt: r.issuedAt.toISOString(),
        expiresAt: r.expiresAt.toISOString(),
        revokedAt: isoOrNull(r.revokedAt),
      }))
      return { credentials, ...next(credentials, query.limit, (c) => c.jti) }
    },
  }),
  route({
    method: 'POST',
    path: '/authorities/{authority}/spaces/{type}/{skey}/credentials/revoke',
    tag: 'credentials',
    summary: 'Revoke live credentials: of a user, of an app, or by id (none given: all)',
    params: spaceParams,
    body: z.object({
      user: did.optional(),
      clientId: z.string().max(2048).optional(),
      credentials: z.array(z.string().max(200)).max(1000).optional(),
    }),
    response: z.object({ revoked: z.number().int() }),
    async handler({ ctx, principal, params, body }) {
      const config = await space(ctx, principal, params, 'credentials')
      const revoked = await ctx.credentials.revoke(config, revocationFilter(body), {
        by: restActor(principal),
        asked: true,
      })
      return { revoked }
    },
  }),
  route({
    method: 'GET',
    path: '/authorities/{authority}/spaces/{type}/{skey}/registrations',
    tag: 'notifications',
    summary: 'Syncers registered for the space’s write notifications',
    params: spaceParams,
    query: z.object({ limit: limit(1000, 100), cursor }),
    response: z.object({
      cursor: z.string().optional(),
      registrations: z.array(
        z.object({
          service: z.string(),
          endpoint: z.string(),
          expiresAt: iso,
          cursor: z.string().nullable(),
          attempts: z.number().int(),
          lastError: z.string().nullable(),
        }),
      ),
    }),
    async handler({ ctx, principal, params, query }) {
      const config = await space(ctx, principal, params, 'notify')
      const rows = await ctx.notify.registrations(config.uri, query.limit, query.cursor)
      const registrations = rows.map((r) => ({
        service: r.service,
        endpoint: r.endpoint,
        expiresAt: r.expiresAt.toISOString(),
        cursor: r.cursor,
        attempts: r.attempts,
        lastError: r.lastError,
      }))
      return { registrations, ...next(registrations, query.limit, (r) => r.service) }
    },
  }),
  route({
    method: 'GET',
    path: '/authorities/{authority}/spaces/{type}/{skey}/dead-letters',
    tag: 'notifications',
    summary: 'Notifications the relay gave up on, newest first',
    params: spaceParams,
    query: z.object({ limit: limit(1000, 100), cursor }),
    response: listDeadLetters.output.extend({ cursor: z.string().optional() }),
    async handler({ ctx, principal, params, query }) {
      const config = await space(ctx, principal, params, 'notify')
      const deadLetters = await ctx.notify.deadLetters(config.uri, query.limit, query.cursor)
      return { deadLetters, ...next(deadLetters, query.limit, (d) => d.id) }
    },
  }),
  route({
    method: 'POST',
    path: '/authorities/{authority}/spaces/{type}/{skey}/dead-letters/{id}/replay',
    tag: 'notifications',
    summary: 'Try a dead letter again, now: delivered, it goes; refused, it stays',
    params: spaceParams.extend({ id: z.string().max(64) }),
    response: z.object({ delivered: z.boolean(), error: z.string().optional() }),
    async handler({ ctx, principal, params }) {
      const config = await space(ctx, principal, params, 'notify')
      const outcome = await ctx.relay.replay(config.uri, params.id, restActor(principal))
      if (outcome === undefined)
        throw new XrpcError(404, 'NotFound', `no dead letter ${params.id} in ${config.uri}`)
      if (outcome === 'pruned')
        throw new XrpcError(
          409,
          'EventPruned',
          'the event is pruned: the syncer catches up from listRepos',
        )
      return outcome
    },
  }),
  route({
    method: 'GET',
    path: '/authorities/{authority}/spaces/{type}/{skey}/stats/credentials',
    tag: 'stats',
    summary: 'Credentials issued and refused per UTC day (up to 10 s behind)',
    params: spaceParams,
    query: statsQuery,
    response: z.object({
      days: z.array(z.object({ day, issued: z.number().int(), refused: z.number().int() })),
    }),
    async handler({ ctx, principal, params, query }) {
      const config = await space(ctx, principal, params, 'credentials')
      return { days: await ctx.tally.days(config.uri, lastDays(ctx.clock.nowMs(), query.days)) }
    },
  }),
  route({
    method: 'GET',
    path: '/authorities/{authority}/spaces/{type}/{skey}/stats/members',
    tag: 'stats',
    summary: 'Members at the end of each UTC day, and the adds and removals on it',
    params: spaceParams,
    query: statsQuery,
    response: z.object({
      days: z.array(
        z.object({
          day,
          members: z.number().int().nullable(),
          added: z.number().int().nullable(),
          removed: z.number().int().nullable(),
        }),
      ),
    }),
    async handler({ ctx, principal, params, query }) {
      const config = await space(ctx, principal, params, 'read')
      const days = lastDays(ctx.clock.nowMs(), query.days)
      return { days: await ctx.spaces.members.daily(config.uri, days) }
    },
  }),
  route({
    method: 'GET',
    path: '/authorities/{authority}/spaces/{type}/{skey}/stats/deliveries',
    tag: 'stats',
    summary: `Write notifications delivered and failed per UTC day, in all and per syncer (the ${SYNCERS_SHOWN} busiest)`,
    params: spaceParams,
    query: statsQuery,
    response: z.object({
      days: z.array(
        deliveriesOut.extend({
          day,
          syncers: z.array(deliveriesOut.extend({ service: z.string() })),
        }),
      ),
    }),
    async handler({ ctx, principal, params, query }) {
      const config = await space(ctx, principal, params, 'notify')
      const days = lastDays(ctx.clock.nowMs(), query.days)
      return { days: await ctx.deliveries.days(config.uri, days) }
    },
  }),
  ...ADMISSION_ROUTES,
  route({
    method: 'GET',
    path: '/authorities/{authority}/audit',
    tag: 'audit',
    summary: 'The audit log, newest first; filtered by time, actor, space and action',
    params: authorityParams,
    query: z.object({
      limit: limit(1000, 100),
      cursor: z.coerce
        .number()
        .int()
        .min(1)
        .optional()
        .describe('from the previous page’s `cursor`'),
      from: z.iso.datetime({ offset: true }).optional().describe('entries at or after'),
      to: z.iso.datetime({ offset: true }).optional().describe('entries before'),
      actor: z.string().max(2048).optional(),
      space: z.string().max(2048).optional(),
      action: z.string().max(100).optional(),
    }),
    response: z.object({ entries: z.array(auditEntryOut), cursor: z.string().optional() }),
    async handler({ ctx, principal, params, query }) {
      await authorize(ctx, principal, params.authority, 'audit')
      const entries = await ctx.audit.query({
        ...query,
        authority: params.authority,
        from: query.from ? new Date(query.from) : undefined,
        to: query.to ? new Date(query.to) : undefined,
      })
      return { entries: entries.map(auditOut), ...next(entries, query.limit, (e) => `${e.seq}`) }
    },
  }),
  route({
    method: 'GET',
    path: '/authorities/{authority}/audit/export',
    tag: 'audit',
    summary: 'The whole audit log as JSON lines, oldest first',
    params: authorityParams,
    response: auditEntryOut,
    responseEncoding: 'application/x-ndjson',
    async handler({ ctx, principal, params }) {
      await authorize(ctx, principal, params.authority, 'audit')
      const entries = ctx.audit.export(params.authority)
      const lines = (async function* () {
        for await (const e of entries) yield auditLine(e)
      })()
      return Readable.from(lines) as never
    },
  }),
  route({
    method: 'POST',
    path: '/authorities/{authority}/audit/verify',
    tag: 'audit',
    summary: 'Recompute the audit chain; name the first broken entry',
    params: authorityParams,
    body: z.object({}).optional(),
    response: z.discriminatedUnion('ok', [
      z.object({
        ok: z.literal(true),
        entries: z.number().int(),
        head: z.string().nullable().describe('the newest entry’s hash, hex'),
      }),
      z.object({ ok: z.literal(false), firstBroken: z.number().int(), why: z.string() }),
    ]),
    async handler({ ctx, principal, params }) {
      await authorize(ctx, principal, params.authority, 'audit')
      return ctx.audit.verify(params.authority)
    },
  }),
]

function inviteView(i: InviteView): z.input<typeof inviteOut> {
  return {
    id: i.id,
    read: i.read,
    write: i.write,
    maxUses: i.maxUses,
    uses: i.uses,
    expiresAt: i.expiresAt.toISOString(),
    createdBy: i.createdBy,
    createdAt: i.createdAt.toISOString(),
    revokedAt: isoOrNull(i.revokedAt),
    usedBy: i.usedBy.map((u) => ({ did: u.did, at: u.at.toISOString() })),
  }
}

function requestView(r: JoinRequestView): z.input<typeof requestOut> {
  return { ...joinRequestOut(r), ...(r.decidedBy ? { decidedBy: r.decidedBy } : {}) }
}

function banView(b: BanView): z.input<typeof banOut> {
  return {
    did: b.did,
    reason: b.reason,
    expiresAt: isoOrNull(b.expiresAt),
    createdBy: b.createdBy,
    createdAt: b.createdAt.toISOString(),
  }
}

function tokenView(t: TokenView): z.input<typeof tokenOut> {
  return {
    id: t.id,
    name: t.name,
    role: t.role,
    space: t.space,
    createdBy: t.createdBy,
    createdAt: t.createdAt.toISOString(),
    expiresAt: isoOrNull(t.expiresAt),
    revokedAt: isoOrNull(t.revokedAt),
    lastUsedAt: isoOrNull(t.lastUsedAt),
  }
}

import { randomBytes, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { z } from 'zod'
import type { AppContext } from '../context.js'
import { InvalidRequestError, XrpcError } from '../errors.js'
import { subsystem } from '../logger.js'
import { route, type RestRoute } from './route.js'
import { cookieOf, SESSION_COOKIE } from '../managers/sessions.js'
import { spaceRef } from '../lexicon/formats.js'
import { getHostedSpace } from '../spaces/hosted.js'
import { dashboardHeaders, pageHtml } from './dashboard.js'

/**
 * The library's errors carry the request (callback parameters, the authorization code among them):
 * only their message is logged.
 */
const reasonOf = (err: unknown) => String((err as Error)?.message ?? err).slice(0, 300)

// A handle or a DID only: the library would also take a server's URL, which is not ours to offer.
const HANDLE_OR_DID = /^(did:[a-z]+:[A-Za-z0-9._:%-]+|[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)$/
const loginInput = z.object({
  handle: z
    .string()
    .trim()
    .max(512)
    .transform((s) => s.replace(/^@/, ''))
    .pipe(z.string().regex(HANDLE_OR_DID))
    .describe('the manager’s handle or DID'),
})

/** Where a finished login lands: the dashboard (docs/dashboard.md). */
export const AFTER_LOGIN = '/'

const sameText = (a: string | null | undefined, b: string | undefined) =>
  !!a && !!b && a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b))

const log = (ctx: AppContext) => subsystem(ctx.logger, 'managers')

/** The browser that started a login: only it can finish it (no session swapping). */
const LOGIN_COOKIE = 'gatehouse_login'
const LOGIN_COOKIE_SEC = 30 * 60

/**
 * What a login started from a join page does at its callback instead of opening a session:
 * `i.{code}` accepts an invite (`/join/{code}`), `r.{base64url JSON}` asks to join a space.
 */
const JOIN_COOKIE = 'gatehouse_join'
const INVITE_CODE = /^[A-Za-z0-9_-]{1,100}$/
/** A join page's message rides in a cookie (at most 4 KiB), so it is shorter than requestJoin's. */
const PAGE_MESSAGE_MAX = 300

type JoinIntent =
  { kind: 'invite'; code: string } | { kind: 'request'; space: string; message?: string }

/** The code of a `/join/{code}` path; anything that cannot be one is 404. */
function inviteCode(params: unknown): string {
  const code = (params as { code?: unknown }).code
  if (typeof code !== 'string' || !INVITE_CODE.test(code))
    throw new XrpcError(404, 'InviteNotFound', 'No such invite')
  return code
}

const requestInput = z.object({
  space: spaceRef,
  message: z.string().max(PAGE_MESSAGE_MAX).optional(),
})

function joinCookieOf(intent: JoinIntent): string {
  if (intent.kind === 'invite') return `i.${intent.code}`
  const { space, message } = intent
  return `r.${Buffer.from(JSON.stringify({ space, message })).toString('base64url')}`
}

/** The intent a join cookie carries, or undefined for anything else (it is only ever ours). */
function joinIntentOf(value: string | undefined): JoinIntent | undefined {
  if (value?.startsWith('i.') && INVITE_CODE.test(value.slice(2)))
    return { kind: 'invite', code: value.slice(2) }
  if (!value?.startsWith('r.')) return undefined
  try {
    const parsed = requestInput.safeParse(
      JSON.parse(Buffer.from(value.slice(2), 'base64url').toString()),
    )
    return parsed.success ? { kind: 'request', ...parsed.data } : undefined
  } catch {
    return undefined
  }
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

/**
 * A page of our own in the dashboard's look: nothing from elsewhere, never cached and never named
 * in a Referer (an invite's link is a secret).
 */
function sendPage(reply: FastifyReply, title: string, body: string, status = 200) {
  return dashboardHeaders(reply)
    .code(status)
    .type('text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('referrer-policy', 'no-referrer')
    .send(pageHtml(title, body))
}

/** A handle field and its button, as the join pages' forms have them. */
const handleField = (button: string) =>
  `<div class="field"><label for="handle">Your handle or DID</label><input id="handle" name="handle" required autocomplete="username" placeholder="alice.example.com"></div><p><button>${button}</button></p>`

/**
 * A join login is started by our own page's form: another site sending a browser there (to have
 * its user join a space it chose) is refused. Browsers say where a navigation came from in
 * Sec-Fetch-Site; `none` is a typed or bookmarked address.
 */
function fromOurPage(req: FastifyRequest): void {
  const site = req.headers['sec-fetch-site']
  if (site !== undefined && site !== 'same-origin' && site !== 'none')
    throw new XrpcError(403, 'Forbidden', 'Start joining from the join page itself')
}

/** Sets (or, empty with 0, clears) a cookie: HttpOnly, Lax, Secure outside development and test. */
function cookie(ctx: AppContext, name: string, value: string, maxAgeSec: number, path = '/') {
  const secure = ctx.cfg.mode === 'production' ? '; Secure' : ''
  return `${name}=${value}; Path=${path}; HttpOnly; SameSite=Lax; Max-Age=${maxAgeSec}${secure}`
}

function setCookie(ctx: AppContext, reply: FastifyReply, value: string, maxAgeSec: number) {
  return reply.header('set-cookie', cookie(ctx, SESSION_COOKIE, value, maxAgeSec))
}

/** The OAuth client. Authorization servers fetch its metadata: they refuse http, localhost and IPs. */
async function oauth(ctx: AppContext) {
  if (!ctx.cfg.service.publicUrl.startsWith('https://'))
    throw new XrpcError(503, 'LoginUnavailable', 'Login needs an https GATEHOUSE_PUBLIC_URL')
  return ctx.oauth.client()
}

/**
 * Starts a login: the authorization URL, and a cookie binding it to this browser. `join`: what a
 * login from a join page does at its callback; a manager's login clears any such cookie, so it can
 * never turn into one.
 */
async function start(
  ctx: AppContext,
  input: unknown,
  reply: FastifyReply,
  join?: JoinIntent,
): Promise<string> {
  const parsed = loginInput.safeParse(input)
  if (!parsed.success) throw new InvalidRequestError('handle: a handle or DID is required')
  const client = await oauth(ctx)
  const nonce = randomBytes(24).toString('base64url')
  try {
    const url = await client.authorize(parsed.data.handle, { scope: 'atproto', state: nonce })
    reply.header('set-cookie', cookie(ctx, LOGIN_COOKIE, nonce, LOGIN_COOKIE_SEC, '/oauth/'))
    reply.header(
      'set-cookie',
      cookie(
        ctx,
        JOIN_COOKIE,
        join ? joinCookieOf(join) : '',
        join ? LOGIN_COOKIE_SEC : 0,
        '/oauth/',
      ),
    )
    return url.href
  } catch (err) {
    log(ctx).info({ reason: reasonOf(err) }, 'login could not start')
    throw new XrpcError(400, 'LoginFailed', 'No login could be started for that handle or DID')
  }
}

/** The login operations of the REST API (in its OpenAPI document like every other). */
export const LOGIN_ROUTES: RestRoute[] = [
  route({
    method: 'POST',
    path: '/login',
    tag: 'session',
    summary: 'Start a login with an atproto account: send the browser to `url`',
    auth: 'none',
    body: loginInput,
    response: z.object({ url: z.string() }),
    handler: async ({ ctx, body, reply }) => ({ url: await start(ctx, body, reply) }),
  }),
  route({
    method: 'GET',
    path: '/session',
    tag: 'session',
    summary: 'The login session of the cookie, with its CSRF token',
    auth: 'session',
    response: z.object({ did: z.string(), csrfToken: z.string(), expiresAt: z.string() }),
    async handler({ principal }) {
      const s = principal.kind === 'session' ? principal.session : undefined
      return { did: principal.did, csrfToken: s!.csrfToken, expiresAt: s!.expiresAt.toISOString() }
    },
  }),
  route({
    method: 'POST',
    path: '/logout',
    tag: 'session',
    summary: 'End this session',
    auth: 'session',
    async handler({ ctx, principal, reply }) {
      if (principal.kind === 'session') await ctx.sessions.end(principal.session.id)
      setCookie(ctx, reply, '', 0)
    },
  }),
  route({
    method: 'POST',
    path: '/logout-everywhere',
    tag: 'session',
    summary: 'End every session of this manager and give the OAuth tokens back',
    auth: 'session',
    response: z.object({ ended: z.number().int() }),
    async handler({ ctx, principal, reply }) {
      const ended = await ctx.sessions.endAll(principal.did)
      // The sessions are over whatever the authorization server says.
      await oauth(ctx)
        .then((client) => client.revoke(principal.did))
        .catch((err: unknown) => log(ctx).warn({ reason: reasonOf(err) }, 'revoke failed'))
      log(ctx).info({ did: principal.did, ended }, 'manager logged out everywhere')
      setCookie(ctx, reply, '', 0)
      return { ended }
    },
  }),
]

/**
 * The rest of managers' login, outside /api/v1: the OAuth client's metadata and JWKS, a plain link
 * that starts a login, and the callback that turns it into a session cookie.
 */
export function registerLogin(app: FastifyInstance, ctx: AppContext): void {
  app.get('/oauth/client-metadata.json', async () => (await oauth(ctx)).clientMetadata)
  app.get('/oauth/jwks.json', async () => (await oauth(ctx)).jwks)
  // Starting a login costs a PAR round trip to the user's authorization server: per address.
  const max = ctx.cfg.rateLimits.loginsPerAddress
  const limited = max ? { config: { rateLimit: { max, timeWindow: 60_000 } } } : {}
  app.get('/login', limited, async (req, reply) =>
    reply.redirect(await start(ctx, req.query, reply), 302),
  )

  // An invitee's door: the page an invite's link opens, and the login that accepts it.
  app.get('/join/:code', async (req, reply) => {
    const code = inviteCode(req.params)
    // Unknown: 404; known but revoked, expired or used up: said plainly (accepting would refuse).
    const invite = await ctx.admission.findInvite(code)
    if (!invite)
      return sendPage(
        reply,
        'No such invite',
        '<p class="error">This link names no invite here. Check it, or ask whoever sent it.</p>',
        404,
      )
    const unusable = invite.revokedAt
      ? 'was revoked'
      : invite.expiresAt.getTime() <= ctx.clock.nowMs()
        ? 'has expired'
        : invite.maxUses !== null && invite.uses >= invite.maxUses
          ? 'is used up'
          : undefined
    if (unusable)
      return sendPage(
        reply,
        'This invite cannot be used',
        `<p class="error">The invite to <code class="wrap">${escapeHtml(invite.space)}</code> ${unusable}. Ask whoever sent it for a new one.</p>`,
      )
    const grants = invite.write ? 'read and write' : 'read'
    return sendPage(
      reply,
      'You are invited',
      `<p>You are invited to join the space</p><p><code class="wrap">${escapeHtml(invite.space)}</code></p>` +
        `<p>Joining makes you a member with <strong>${grants}</strong> access: apps you use can then get credentials to ${grants} its records. The invite is valid until <time datetime="${invite.expiresAt.toISOString()}">${invite.expiresAt.toUTCString()}</time>.</p>` +
        `<form method="get" action="/join/${code}/login" data-navigate>${handleField('Log in and join')}</form>`,
    )
  })
  app.get('/join/:code/login', limited, async (req, reply) => {
    fromOurPage(req)
    const code = inviteCode(req.params)
    return reply.redirect(await start(ctx, req.query, reply, { kind: 'invite', code }), 302)
  })
  // A user's door into a space that takes join requests: the page, and the login that asks.
  app.get('/request-join', async (req, reply) => {
    const { space } = parseRequestInput(req.query)
    return sendPage(
      reply,
      'Ask to join',
      `<form method="get" action="/request-join/login" data-navigate><input type="hidden" name="space" value="${escapeHtml(space)}"><p><code class="wrap">${escapeHtml(space)}</code></p><div class="field"><label for="message">A word to the managers (optional)</label><textarea id="message" name="message" maxlength="${PAGE_MESSAGE_MAX}"></textarea></div>${handleField('Log in and ask')}</form>`,
    )
  })
  app.get('/request-join/login', limited, async (req, reply) => {
    fromOurPage(req)
    const { space, message } = parseRequestInput(req.query)
    const intent: JoinIntent = { kind: 'request', space, ...(message ? { message } : {}) }
    return reply.redirect(await start(ctx, req.query, reply, intent), 302)
  })

  app.get('/oauth/callback', limited, async (req, reply) => {
    const client = await oauth(ctx)
    const params = new URLSearchParams(req.url.split('?')[1] ?? '')
    let did: string
    let state: string | null
    try {
      ;({
        session: { did },
        state,
      } = await client.callback(params))
    } catch (err) {
      log(ctx).info({ reason: reasonOf(err) }, 'login callback refused')
      throw new XrpcError(400, 'LoginFailed', 'The login did not complete')
    }
    reply.header('set-cookie', cookie(ctx, LOGIN_COOKIE, '', 0, '/oauth/'))
    if (!sameText(state, cookieOf(req, LOGIN_COOKIE))) {
      // Someone else's finished login, brought to this browser: it must not become its session.
      await client.revoke(did).catch(() => {})
      throw new XrpcError(400, 'LoginFailed', 'This login was started in another browser')
    }
    const join = joinIntentOf(cookieOf(req, JOIN_COOKIE))
    if (join) {
      reply.header('set-cookie', cookie(ctx, JOIN_COOKIE, '', 0, '/oauth/'))
      return joinAtLogin(ctx, client, did, join, reply)
    }
    if ((await ctx.managers.authoritiesOf(did, 1)).length === 0) {
      // Nothing here for this account: its tokens are of no use to us, so they are given back.
      await client
        .revoke(did)
        .catch((err: unknown) => log(ctx).warn({ reason: reasonOf(err) }, 'revoke failed'))
      throw new XrpcError(403, 'NotAManager', 'This account manages no authority on this host')
    }
    const created = await ctx.sessions.create(did)
    const maxAgeSec = Math.floor((created.expiresAt.getTime() - ctx.clock.nowMs()) / 1000)
    log(ctx).info({ did }, 'manager logged in')
    return setCookie(ctx, reply, created.cookie, maxAgeSec).redirect(AFTER_LOGIN, 303)
  })
}

function parseRequestInput(query: unknown) {
  const parsed = requestInput.safeParse(query)
  if (!parsed.success)
    throw new InvalidRequestError(
      `space: a space URI; message: at most ${PAGE_MESSAGE_MAX} characters`,
    )
  return parsed.data
}

/**
 * A login from a join page ends in what it was for, and nothing else: accepting the invite, or
 * asking to join. It only proved who the user is, so its tokens are given back and no session is
 * made: the browser gains no power to manage anything, whoever the account is.
 */
async function joinAtLogin(
  ctx: AppContext,
  client: Awaited<ReturnType<typeof oauth>>,
  did: string,
  join: JoinIntent,
  reply: FastifyReply,
) {
  await client
    .revoke(did)
    .catch((err: unknown) => log(ctx).warn({ reason: reasonOf(err) }, 'revoke failed'))
  if (join.kind === 'invite') {
    const accepted = await ctx.admission.acceptInvite(join.code, did, 'rest')
    log(ctx).info({ did, space: accepted.space }, 'invite accepted at login')
    return sendPage(
      reply,
      'You have joined',
      `<p>${escapeHtml(did)} is now a member of <code>${escapeHtml(accepted.space)}</code>.</p>`,
    )
  }
  const config = await getHostedSpace(ctx, join.space)
  const request = await ctx.admission.requestJoin(config, did, 'rest', join.message)
  log(ctx).info({ did, space: config.uri }, 'join request made at login')
  return sendPage(
    reply,
    'You have asked to join',
    `<p>The request of ${escapeHtml(did)} to join <code>${escapeHtml(config.uri)}</code> is ${request.status}.</p>`,
  )
}

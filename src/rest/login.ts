import { randomBytes, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { z } from 'zod'
import type { AppContext } from '../context.js'
import { InvalidRequestError, XrpcError } from '../errors.js'
import { subsystem } from '../logger.js'
import { route, type RestRoute } from './route.js'
import { cookieOf, SESSION_COOKIE } from '../managers/sessions.js'

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

/** Where a finished login lands: the API's reference page, until the dashboard (issue #26) is. */
export const AFTER_LOGIN = '/api/v1/docs'

const sameText = (a: string | null | undefined, b: string | undefined) =>
  !!a && !!b && a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b))

const log = (ctx: AppContext) => subsystem(ctx.logger, 'managers')

/** The browser that started a login: only it can finish it (no session swapping). */
const LOGIN_COOKIE = 'gatehouse_login'
const LOGIN_COOKIE_SEC = 30 * 60

/** The invite an invitee's login (started from `/join/{code}`) accepts at its callback. */
const JOIN_COOKIE = 'gatehouse_join'
const INVITE_CODE = /^[A-Za-z0-9_-]{1,100}$/

/** The code of a `/join/{code}` path; anything that cannot be one is 404. */
function inviteCode(params: unknown): string {
  const code = (params as { code?: unknown }).code
  if (typeof code !== 'string' || !INVITE_CODE.test(code))
    throw new XrpcError(404, 'InviteNotFound', 'No such invite')
  return code
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

/** A page of our own: no script, nothing fetched, never cached (an invite's link is a secret). */
function sendPage(reply: FastifyReply, title: string, body: string) {
  return reply
    .type('text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('content-security-policy', "default-src 'none'")
    .header('referrer-policy', 'no-referrer')
    .send(
      `<!doctype html><html lang="en"><meta charset="utf-8"><title>${title}</title><h1>${title}</h1>${body}</html>`,
    )
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
 * Starts a login: the authorization URL, and a cookie binding it to this browser. `invite`: the code
 * of the invite this login accepts (an invitee's login); a manager's login clears any such cookie,
 * so it can never turn into one.
 */
async function start(
  ctx: AppContext,
  input: unknown,
  reply: FastifyReply,
  invite?: string,
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
      cookie(ctx, JOIN_COOKIE, invite ?? '', invite ? LOGIN_COOKIE_SEC : 0, '/oauth/'),
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
  app.get('/login', async (req, reply) => reply.redirect(await start(ctx, req.query, reply), 302))

  // An invitee's door: the page an invite's link opens, and the login that accepts it.
  app.get('/join/:code', async (req, reply) => {
    const code = inviteCode(req.params)
    return sendPage(
      reply,
      'You are invited',
      `<form method="get" action="/join/${code}/login"><label>Your handle or DID <input name="handle" required></label> <button>Log in and join</button></form>`,
    )
  })
  app.get('/join/:code/login', async (req, reply) => {
    const code = inviteCode(req.params)
    return reply.redirect(await start(ctx, req.query, reply, code), 302)
  })

  app.get('/oauth/callback', async (req, reply) => {
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
    const invite = cookieOf(req, JOIN_COOKIE)
    if (invite) {
      reply.header('set-cookie', cookie(ctx, JOIN_COOKIE, '', 0, '/oauth/'))
      return acceptAtLogin(ctx, client, did, invite, reply)
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

/**
 * An invitee's login ends in the invite's acceptance, and nothing else: the login only proved who
 * the invitee is, so its tokens are given back and no session is made. The browser gains no power
 * to manage anything, whoever the account is.
 */
async function acceptAtLogin(
  ctx: AppContext,
  client: Awaited<ReturnType<typeof oauth>>,
  did: string,
  code: string,
  reply: FastifyReply,
) {
  await client
    .revoke(did)
    .catch((err: unknown) => log(ctx).warn({ reason: reasonOf(err) }, 'revoke failed'))
  const accepted = await ctx.admission.acceptInvite(code, did)
  log(ctx).info({ did, space: accepted.space }, 'invite accepted at login')
  return sendPage(
    reply,
    'You have joined',
    `<p>${escapeHtml(did)} is now a member of <code>${escapeHtml(accepted.space)}</code>.</p>`,
  )
}

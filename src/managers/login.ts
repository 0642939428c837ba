import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { z } from 'zod'
import type { AppContext } from '../context.js'
import { InvalidRequestError, XrpcError } from '../errors.js'
import { subsystem } from '../logger.js'
import type { ManagerSessionView } from './sessions.js'

export const SESSION_COOKIE = 'gatehouse_session'

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
    .pipe(z.string().regex(HANDLE_OR_DID)),
})

/** The session cookie of a request, if it sent one. */
export function sessionCookie(req: FastifyRequest): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const at = part.indexOf('=')
    if (at > 0 && part.slice(0, at).trim() === SESSION_COOKIE) return part.slice(at + 1).trim()
  }
  return undefined
}

/** The cookie's session, or 401; with `csrf`, also the header's token, or 403. */
export async function requireSession(
  ctx: AppContext,
  req: FastifyRequest,
  csrf: boolean,
): Promise<ManagerSessionView> {
  const s = await ctx.sessions.resolve(sessionCookie(req))
  if (!s) throw new XrpcError(401, 'AuthenticationRequired', 'Log in first')
  // SameSite=Lax still sends the cookie on some cross-site requests; the token is what a page
  // of ours can read and another site cannot.
  if (csrf && !ctx.sessions.checkCsrf(s, req.headers['x-csrf-token']))
    throw new XrpcError(403, 'InvalidCsrfToken', 'X-CSRF-Token is missing or wrong')
  return s
}

/**
 * Managers' login: the OAuth client's metadata and JWKS, starting a login, the callback that turns
 * it into a session cookie, the session itself and logging out. Plain routes, not XRPC; errors
 * take the same `{ error, message }` shape through the server's error handler.
 */
export function registerLogin(app: FastifyInstance, ctx: AppContext): void {
  const log = subsystem(ctx.logger, 'managers')
  // Secure everywhere but on a developer's http://localhost (development and test modes).
  const secure = ctx.cfg.mode === 'production' ? '; Secure' : ''
  const setCookie = (reply: FastifyReply, value: string, maxAgeSec: number) =>
    reply.header(
      'set-cookie',
      `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${maxAgeSec}${secure}`,
    )

  // Authorization servers fetch the client's metadata: they refuse http, localhost and IPs.
  const oauth = async () => {
    if (!ctx.cfg.service.publicUrl.startsWith('https://'))
      throw new XrpcError(503, 'LoginUnavailable', 'Login needs an https GATEHOUSE_PUBLIC_URL')
    return ctx.oauth.client()
  }

  const start = async (input: unknown): Promise<string> => {
    const parsed = loginInput.safeParse(input)
    if (!parsed.success) throw new InvalidRequestError('handle: a handle or DID is required')
    const client = await oauth()
    try {
      return (await client.authorize(parsed.data.handle, { scope: 'atproto' })).href
    } catch (err) {
      log.info({ reason: reasonOf(err) }, 'login could not start')
      throw new XrpcError(400, 'LoginFailed', 'No login could be started for that handle or DID')
    }
  }

  const session = (req: FastifyRequest, csrf: boolean) => requireSession(ctx, req, csrf)

  app.get('/oauth/client-metadata.json', async () => (await oauth()).clientMetadata)
  app.get('/oauth/jwks.json', async () => (await oauth()).jwks)

  app.post('/api/v1/login', async (req) => ({ url: await start(req.body) }))
  app.get('/login', async (req, reply) => reply.redirect(await start(req.query), 302))

  app.get('/oauth/callback', async (req, reply) => {
    const client = await oauth()
    const params = new URLSearchParams(req.url.split('?')[1] ?? '')
    let did: string
    try {
      did = (await client.callback(params)).session.did
    } catch (err) {
      log.info({ reason: reasonOf(err) }, 'login callback refused')
      throw new XrpcError(400, 'LoginFailed', 'The login did not complete')
    }
    const manages = await ctx.db.prisma.authorityManager.findFirst({
      where: { did },
      select: { did: true },
    })
    if (!manages) {
      // Nothing here for this account: its tokens are of no use to us, so they are given back.
      await client
        .revoke(did)
        .catch((err: unknown) => log.warn({ reason: reasonOf(err) }, 'revoke failed'))
      throw new XrpcError(403, 'NotAManager', 'This account manages no authority on this host')
    }
    const created = await ctx.sessions.create(did)
    const maxAgeSec = Math.floor((created.expiresAt.getTime() - ctx.clock.nowMs()) / 1000)
    log.info({ did }, 'manager logged in')
    return setCookie(reply, created.cookie, maxAgeSec).redirect('/', 303)
  })

  app.get('/api/v1/session', async (req) => {
    const s = await session(req, false)
    return { did: s.did, csrfToken: s.csrfToken, expiresAt: s.expiresAt.toISOString() }
  })

  app.post('/api/v1/logout', async (req, reply) => {
    const s = await session(req, true)
    await ctx.sessions.end(s.id)
    return setCookie(reply, '', 0).code(204).send()
  })

  app.post('/api/v1/logout-everywhere', async (req, reply) => {
    const s = await session(req, true)
    const ended = await ctx.sessions.endAll(s.did)
    // The sessions are over whatever the authorization server says.
    await oauth()
      .then((client) => client.revoke(s.did))
      .catch((err: unknown) => log.warn({ reason: reasonOf(err) }, 'revoke failed'))
    log.info({ did: s.did, ended }, 'manager logged out everywhere')
    return setCookie(reply, '', 0).send({ ended })
  })
}

import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { z } from 'zod'
import type { Actor } from '../audit/audit-log.js'
import { AuthorityLifecycleError } from '../authorities/lifecycle.js'
import {
  can,
  RoleChangeError,
  weaker,
  type Capability,
  type ManagerRole,
} from '../authorities/managers.js'
import type { AppContext } from '../context.js'
import { mapDbError, UniqueViolationError } from '../db/errors.js'
import {
  AuthRequiredError,
  ForbiddenError,
  InternalServerError,
  InvalidRequestError,
  XrpcError,
} from '../errors.js'
import { requireSession, sessionCookie, type ManagerSessionView } from '../managers/sessions.js'
import { TokenError, type TokenView } from '../managers/tokens.js'
import { PolicyCodecError } from '../policy/codec.js'
import { PresetError } from '../policy/registry.js'
import { AdmissionError } from '../spaces/admission.js'
import { SpaceError } from '../spaces/space-service.js'
import { assertStorableText, describeZodError } from '../xrpc/method.js'

export const API_PREFIX = '/api/v1'

/** Who is calling: a logged-in manager (session cookie) or an API token (`Bearer gh_…`). */
export type Principal =
  | { kind: 'session'; did: string; session: ManagerSessionView }
  | { kind: 'token'; did: string; token: TokenView }

type Schema = z.ZodType
type Obj = z.ZodObject
type Out<T> = T extends Schema ? z.output<T> : undefined

export interface Call<P, Q, B> {
  ctx: AppContext
  principal: Principal
  params: P
  query: Q
  /** The parsed JSON body (an `application/x-ndjson` one comes as the raw stream, typed as a line). */
  body: B
  reply: FastifyReply
}

/** One REST operation: its schemas, written once, validate the request and make the OpenAPI entry. */
export interface RestRoute<
  P extends Obj | undefined = Obj | undefined,
  Q extends Obj | undefined = Obj | undefined,
  B extends Schema | undefined = Schema | undefined,
  R extends Schema | undefined = Schema | undefined,
> {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'
  /** Under /api/v1, parameters as `{name}`. */
  path: string
  summary: string
  tag: string
  params?: P
  query?: Q
  body?: B
  /** `application/x-ndjson`: the handler gets the body as a stream, and `body` documents a line. */
  bodyEncoding?: 'application/x-ndjson'
  /** Undefined: 204 No Content. */
  response?: R
  /** `application/x-ndjson`: the handler returns a stream (cast), and `response` documents a line. */
  responseEncoding?: 'application/x-ndjson'
  status?: 200 | 201
  /** Who may call: a token or a session (the default), a session only, or anyone. */
  auth?: 'session' | 'none'
  /** A create: honours `Idempotency-Key`. */
  idempotent?: boolean
  /** Top-level answer fields never kept for a replay (a secret shown once, a link holding it). */
  secret?: string[]
  handler(call: Call<Out<P>, Out<Q>, Out<B>>): Promise<R extends Schema ? z.input<R> : void>
}

/** Typed route definitions (the table itself is untyped, see routes.ts). */
export function route<
  P extends Obj | undefined = undefined,
  Q extends Obj | undefined = undefined,
  B extends Schema | undefined = undefined,
  R extends Schema | undefined = undefined,
>(r: RestRoute<P, Q, B, R>): RestRoute {
  return r as unknown as RestRoute
}

/** The audit log's name for a REST caller: the manager (a token acts for its creator). */
/** Who a call is counted and remembered for: the API token, or the session's DID. */
const principalKey = (principal: Principal) =>
  principal.kind === 'token' ? `token:${principal.token.id}` : principal.did

export const restActor = (principal: Principal): Actor => ({ did: principal.did, door: 'rest' })

/**
 * The role `principal` acts with on `authority` (and `space`), when it holds `capability`. A
 * refusal is recorded in the authority's audit log before it goes out.
 */
export async function authorize(
  ctx: AppContext,
  principal: Principal,
  authority: string,
  capability: Capability,
  space?: string,
): Promise<ManagerRole> {
  const refusal = await refusalOf(ctx, principal, authority, capability, space)
  if (typeof refusal === 'string') {
    await ctx.audit.recordRefusal({
      authority,
      actor: restActor(principal),
      action: 'refused',
      space,
      reason: `${capability}: ${refusal}`,
    })
    throw new ForbiddenError(refusal)
  }
  return refusal.role
}

/** The caller's role when it may `capability`, or why not. */
async function refusalOf(
  ctx: AppContext,
  principal: Principal,
  authority: string,
  capability: Capability,
  space?: string,
): Promise<{ role: ManagerRole } | string> {
  let role = await ctx.managers.roleOf(authority, principal.did)
  if (principal.kind === 'token') {
    const { token } = principal
    if (token.authority !== authority) return `This API token is for ${token.authority}`
    if (token.space !== null && token.space !== space)
      return `This API token is limited to ${token.space}`
    // Never above the creator's role now.
    if (role) role = weaker(role, token.role)
  }
  if (!role) return `${principal.did} does not manage ${authority}`
  if (!can(role, capability)) return `The ${role} role does not allow ${capability} on ${authority}`
  return { role }
}

/** A cookie rides along on requests other sites make: changes need the session's CSRF token. */
async function sessionPrincipal(ctx: AppContext, req: FastifyRequest): Promise<Principal> {
  const session = await requireSession(ctx.sessions, req, req.method !== 'GET')
  return { kind: 'session', did: session.did, session }
}

async function authenticate(ctx: AppContext, req: FastifyRequest): Promise<Principal> {
  const header = req.headers.authorization
  if (header !== undefined) {
    const secret = /^Bearer (\S{1,200})$/.exec(header)?.[1]
    const token = secret ? await ctx.tokens.resolve(secret) : undefined
    if (!token)
      throw new AuthRequiredError('This API token is unknown, expired or revoked', 'InvalidToken')
    return { kind: 'token', did: token.createdBy, token }
  }
  if (sessionCookie(req) !== undefined) return sessionPrincipal(ctx, req)
  throw new AuthRequiredError('Log in, or send an API token as Authorization: Bearer gh_…')
}

/** A service's refusal as the REST status it means; anything else goes on as it is. */
function restError(err: unknown): unknown {
  if (err instanceof SpaceError || (err instanceof XrpcError && err.error === 'SpaceNotFound'))
    return new XrpcError(err.error === 'SpaceNotFound' ? 404 : 409, err.error, err.message)
  if (err instanceof RoleChangeError) return new ForbiddenError(err.message)
  if (err instanceof AdmissionError) {
    const status = { InviteNotFound: 404, JoinRequestNotFound: 404, AlreadyDecided: 409 }[
      err.code as string
    ]
    if (status) return new XrpcError(status, err.code, err.message)
  }
  if (err instanceof TokenError || err instanceof PresetError)
    return new InvalidRequestError(err.message)
  if (err instanceof PolicyCodecError) return new InvalidRequestError(err.message, err.error)
  if (err instanceof AuthorityLifecycleError) {
    const status = { PlcUnavailable: 503, AuthorityNotFound: 404 }[err.code as string] ?? 400
    return new XrpcError(status, err.code, err.message)
  }
  return err
}

function parse<T extends Schema>(schema: T, value: unknown, where: string): z.output<T> {
  // Path and query come as objects of the router's own classes: checked as the plain objects they are.
  assertStorableText(where, where === 'body' ? value : { ...(value as object) })
  const parsed = schema.safeParse(value ?? (where === 'body' ? undefined : {}))
  if (!parsed.success) throw new InvalidRequestError(describeZodError(where, parsed.error))
  return parsed.data
}

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,200}$/

/**
 * A create with `Idempotency-Key`: the first request runs and its answer is kept; a repeat with the
 * same key and request gets that answer again, one with another request a 409.
 */
async function idempotent(
  ctx: AppContext,
  req: FastifyRequest,
  principal: Principal,
  secret: string[] | undefined,
  run: () => Promise<{ status: number; body: unknown }>,
): Promise<{ status: number; body: unknown; replayed?: boolean }> {
  const key = req.headers['idempotency-key']
  if (key === undefined) return run()
  if (typeof key !== 'string' || !IDEMPOTENCY_KEY.test(key))
    throw new InvalidRequestError('Idempotency-Key is 1 to 200 visible ASCII characters')
  const who = principalKey(principal)
  const requestHash = createHash('sha256')
    .update(`${req.method} ${req.url}\n${JSON.stringify(req.body ?? null)}`)
    .digest('hex')
  const id = { principal_key: { principal: who, key } }
  const rows = ctx.db.prisma.idempotentResponse
  const reserve = () =>
    rows.create({
      data: { principal: who, key, requestHash, status: 0, body: '', createdAt: ctx.clock.now() },
    })
  try {
    // Reserve the key first (status 0: running), so two racing repeats cannot both run.
    await reserve()
  } catch (err) {
    if (!(mapDbError(err) instanceof UniqueViolationError)) throw err
    let kept = await rows.findUnique({ where: id })
    // A reservation older than any request can run was left by a crash: the key is free again.
    if (kept?.status === 0 && kept.createdAt.getTime() < ctx.clock.nowMs() - ABANDONED_MS) {
      await rows.deleteMany({ where: { principal: who, key, status: 0 } })
      const again = await reserve().then(
        () => 'reserved' as const,
        () => rows.findUnique({ where: id }),
      )
      if (again === 'reserved') return finish()
      kept = again
    }
    if (!kept) throw new XrpcError(409, 'IdempotencyConflict', 'Retry this request')
    if (kept.requestHash !== requestHash)
      throw new XrpcError(
        409,
        'IdempotencyKeyReused',
        'This Idempotency-Key was used for another request',
      )
    if (kept.status === 0)
      throw new XrpcError(
        409,
        'IdempotencyConflict',
        'A request with this Idempotency-Key is still running',
      )
    return { status: kept.status, body: JSON.parse(kept.body) as unknown, replayed: true }
  }
  return finish()

  async function finish() {
    try {
      const result = await run()
      // A secret is shown once: the kept answer goes without it.
      const kept = secret
        ? Object.fromEntries(
            Object.entries(result.body as object).filter(([k]) => !secret.includes(k)),
          )
        : (result.body ?? null)
      await rows.update({
        where: id,
        data: { status: result.status, body: JSON.stringify(kept) },
      })
      return result
    } catch (err) {
      await rows.delete({ where: id }).catch(() => {})
      throw err
    }
  }
}

/** A kept reservation older than this was abandoned (no request runs this long). */
const ABANDONED_MS = 5 * 60_000

/** Registers `routes` under `prefix`, each one request → auth → validation → handler → output check. */
export async function registerRoutes(
  app: FastifyInstance,
  ctx: AppContext,
  routes: RestRoute[],
): Promise<void> {
  const validateOutput = ctx.cfg.service.validateOutput
  await app.register(
    async (api) => {
      for (const r of routes) {
        api.route({
          method: r.method,
          url: r.path.replace(/\{(\w+)\}/g, ':$1'),
          handler: async (req, reply) => {
            const principal =
              r.auth === 'none'
                ? (undefined as unknown as Principal)
                : r.auth === 'session'
                  ? await sessionPrincipal(ctx, req)
                  : await authenticate(ctx, req)
            if (principal) await app.identityLimit(req, 'restPerPrincipal', principalKey(principal))
            const params = r.params ? parse(r.params, req.params, 'path') : undefined
            const query = r.query ? parse(r.query, req.query, 'query') : undefined
            let body: unknown
            // Any other body type came as an unread stream: refuse it before anything walks it.
            if (req.body instanceof Readable && !r.bodyEncoding)
              throw new XrpcError(
                415,
                'UnsupportedMediaType',
                'This operation takes application/json',
              )
            if (r.bodyEncoding) {
              if (!(req.body instanceof Readable))
                throw new InvalidRequestError(`This operation takes an ${r.bodyEncoding} body`)
              body = req.body
            } else if (r.body) body = parse(r.body, req.body, 'body')
            const run = async () => {
              const call = { ctx, principal, params, query, body, reply }
              const out: unknown = await r.handler(call as never).catch((err: unknown) => {
                throw restError(err)
              })
              if (r.response && validateOutput && !(out instanceof Readable)) {
                const checked = r.response.safeParse(out)
                if (!checked.success)
                  throw new InternalServerError(undefined, {
                    cause: new Error(
                      `${r.method} ${r.path}: ${describeZodError('output', checked.error)}`,
                    ),
                  })
              }
              return { status: r.response ? (r.status ?? 200) : 204, body: out }
            }
            const result = r.idempotent
              ? await idempotent(ctx, req, principal, r.secret, run)
              : await run()
            // Answers are per caller, and some carry secrets: no cache keeps them.
            reply.header('cache-control', 'no-store')
            if ('replayed' in result && result.replayed) reply.header('idempotent-replayed', 'true')
            if (r.responseEncoding) reply.header('content-type', r.responseEncoding)
            return reply.code(result.status).send(result.status === 204 ? undefined : result.body)
          },
        })
      }
    },
    { prefix: API_PREFIX },
  )
}

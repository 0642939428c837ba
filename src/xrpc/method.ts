import { Readable } from 'node:stream'
import type { LimitKind } from '../net/identity-limits.js'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { z } from 'zod'
import type { AppContext } from '../context.js'
import { InternalServerError, InvalidRequestError } from '../errors.js'
import { findUnstorableText } from '../lexicon/formats.js'
import type { MethodSpec } from '../lexicon/method.js'
import type { RequestView } from '../auth/output.js'

/** Reference order: auth on onRequest (before the body), zod params/input, handler, output. */

export type AuthFn<A> = (req: RequestView, ctx: AppContext) => Promise<A>

type Out<T> = T extends z.ZodType ? z.output<T> : undefined

export interface HandlerArgs<M extends MethodSpec, A> {
  params: z.output<M['params']>
  input: Out<M['input']>
  /** The unparsed request body, for `application/x-ndjson` methods. */
  body: Readable | undefined
  auth: A
  ctx: AppContext
  req: RequestView
  /** A lexicon-declared refusal (400): `throw fail('SpaceNotFound', '…')`. */
  fail: (error: M['errors'][number], message: string) => InvalidRequestError
  /** Counts this call against a per-identity limit (after authentication); 429 past it. */
  limit: (kind: LimitKind, identity: string) => Promise<void>
}

export interface Registration<M extends MethodSpec, A> {
  auth?: AuthFn<A>
  /** Authenticate after params and input validate (notifyWrite's contract refuses bad input first). */
  authAfterInput?: boolean
  handler: (args: HandlerArgs<M, A>) => Promise<Out<M['output']>>
}

function toView(req: FastifyRequest): RequestView {
  return {
    id: req.id,
    method: req.method,
    url: req.url,
    headers: req.headers,
    rawHeaders: req.raw.rawHeaders,
    ip: req.ip,
  }
}

/** One line naming the first problem, e.g. `Invalid params: limit: Too big: expected number to be <=1000`. */
export function describeZodError(where: string, err: z.ZodError): string {
  const issue = err.issues[0]
  if (!issue) return `Invalid ${where}`
  const path = issue.path.length ? `${issue.path.join('.')}: ` : ''
  return `Invalid ${where}: ${path}${issue.message}`
}

/** Refuses (400) a NUL or a lone surrogate anywhere in the params or the JSON body. */
export function assertStorableText(where: string, value: unknown): void {
  const at = findUnstorableText(value)
  if (at)
    throw new InvalidRequestError(
      `Invalid ${where}: ${at}: must be text without NUL or unpaired surrogates`,
    )
}

const authResults = new WeakMap<FastifyRequest, unknown>()

/** The methods one server serves, by NSID: used by the router, the not-found handler and the drift guard. */
export class XrpcRouter {
  private readonly methods = new Map<string, MethodSpec>()

  constructor(
    private readonly app: FastifyInstance,
    private readonly ctx: AppContext,
  ) {}

  get context(): AppContext {
    return this.ctx
  }

  get(nsid: string): MethodSpec | undefined {
    return this.methods.get(nsid)
  }

  list(): MethodSpec[] {
    return [...this.methods.values()]
  }

  add<M extends MethodSpec, A = undefined>(method: M, reg: Registration<M, A>): void {
    if (this.methods.has(method.nsid)) throw new Error(`${method.nsid} registered twice`)
    this.methods.set(method.nsid, method)
    const ctx = this.ctx
    const validateOutput = ctx.cfg.service.validateOutput
    const fail = (error: string, message: string) => new InvalidRequestError(message, error)

    this.app.route({
      method: method.type === 'query' ? 'GET' : 'POST',
      url: `/xrpc/${method.nsid}`,
      onRequest:
        reg.auth && !reg.authAfterInput
          ? async (req) => {
              authResults.set(req, await reg.auth!(toView(req), ctx))
            }
          : undefined,
      handler: async (req, reply) => {
        assertStorableText('params', req.query)
        if (!(req.body instanceof Readable)) assertStorableText('input', req.body)
        const params = method.params.safeParse(req.query ?? {})
        if (!params.success) throw new InvalidRequestError(describeZodError('params', params.error))
        let input: unknown = undefined
        let body: Readable | undefined
        if (method.inputEncoding === 'application/x-ndjson') {
          if (!(req.body instanceof Readable)) {
            throw new InvalidRequestError('This method takes an application/x-ndjson body')
          }
          body = req.body
        } else if (method.input) {
          if (req.body === undefined || req.body === null) {
            throw new InvalidRequestError('A JSON request body (application/json) is required')
          }
          const parsed = method.input.safeParse(req.body)
          if (!parsed.success)
            throw new InvalidRequestError(describeZodError('input', parsed.error))
          input = parsed.data
        }
        if (reg.auth && reg.authAfterInput) authResults.set(req, await reg.auth(toView(req), ctx))
        const output = await reg.handler({
          params: params.data,
          input: input as Out<M['input']>,
          body,
          auth: authResults.get(req) as A,
          ctx,
          req: toView(req),
          fail,
          limit: (kind: LimitKind, identity: string) => this.app.identityLimit(req, kind, identity),
        } as HandlerArgs<M, A>)
        if (method.output === undefined) {
          return reply.code(200).send()
        }
        if (method.outputEncoding === 'application/x-ndjson') {
          return reply.code(200).header('content-type', 'application/x-ndjson').send(output)
        }
        if (validateOutput) {
          const checked = method.output.safeParse(output)
          if (!checked.success) {
            throw new InternalServerError(undefined, {
              cause: new Error(`${method.nsid}: ${describeZodError('output', checked.error)}`),
            })
          }
        }
        return reply.code(200).send(output)
      },
    })
  }
}

import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Config } from '../config.js'
import { RateLimitError } from '../errors.js'

/** A per-identity limit: its setting in `rateLimits`. */
export type LimitKind = Exclude<keyof Config['rateLimits'], 'loginsPerAddress'>

/** Checks one call against `kind`'s limit for `identity`; throws RateLimitError past it. */
export type IdentityLimit = (
  req: FastifyRequest,
  kind: LimitKind,
  identity: string,
) => Promise<void>

const WHO: Record<LimitKind, string> = {
  credentialsPerUser: 'credential requests for this user',
  credentialsPerClient: 'credential requests from this app',
  notifyPerRepo: 'write notifications for this repo',
  notifyPerRepoHost: 'write notifications from this repo host',
  registrationsPerService: 'registrations for this service',
  restPerPrincipal: 'API calls with this token or session',
}

/** The identity each request is being counted for, read by the limiters' key generator. */
const keys = new WeakMap<FastifyRequest, string>()

/**
 * Limits per verified identity (a user, an app's client id, a repo, a repo host, a service, an API
 * token or session), each a fixed one-minute window in @fastify/rate-limit's store (an LRU, so a
 * stranger's made-up identities cannot grow it). Counted per process: with N processes, each allows
 * the whole limit (docs/limits.md). Called after authentication, never on claims not verified.
 */
export function identityLimits(app: FastifyInstance, limits: Config['rateLimits']): IdentityLimit {
  const checks = new Map<LimitKind, ReturnType<FastifyInstance['createRateLimit']>>()
  for (const kind of Object.keys(WHO) as LimitKind[]) {
    const max = limits[kind]
    if (max > 0)
      checks.set(
        kind,
        app.createRateLimit({ max, timeWindow: 60_000, keyGenerator: (req) => keys.get(req)! }),
      )
  }
  return async (req, kind, identity) => {
    const check = checks.get(kind)
    if (!check) return
    keys.set(req, `${kind} ${identity}`)
    const result = await check(req)
    if (!result.isAllowed && result.isExceeded)
      throw new RateLimitError(`Too many ${WHO[kind]}; try again later`, result.ttlInSeconds)
  }
}

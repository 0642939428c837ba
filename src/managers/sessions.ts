import { hash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import type { Clock } from '../clock.js'
import type { Db } from '../db/client.js'
import { XrpcError } from '../errors.js'

/** A live session, as the routes and the REST API see it. */
export interface ManagerSessionView {
  /** SHA-256 of the cookie, hex: the row id (the cookie itself is never stored). */
  id: string
  did: string
  csrfToken: string
  /** Absolute expiry. */
  expiresAt: Date
}

export interface SessionLimits {
  idleMs: number
  maxAgeMs: number
}

/** lastSeenAt is written at most this often, so a busy session is not a write per request. */
const TOUCH_EVERY_MS = 60_000
/** 32 random bytes, base64url without padding. */
const COOKIE_RE = /^[A-Za-z0-9_-]{43}$/

const idOf = (cookie: string) => hash('sha256', cookie, 'hex')

/**
 * Managers' login sessions behind the `gatehouse_session` cookie. Only the cookie's SHA-256 is kept,
 * so a copy of the database cannot be replayed as cookies. Each session has a CSRF token the
 * browser reads from /api/v1/session and sends back on every state-changing call.
 */
export class SessionService {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly limits: SessionLimits,
  ) {}

  async create(did: string): Promise<{ cookie: string; csrfToken: string; expiresAt: Date }> {
    const cookie = randomBytes(32).toString('base64url')
    const csrfToken = randomBytes(32).toString('base64url')
    const now = this.clock.now()
    const expiresAt = new Date(now.getTime() + this.limits.maxAgeMs)
    await this.db.prisma.managerSession.create({
      data: { id: idOf(cookie), did, csrfToken, createdAt: now, lastSeenAt: now, expiresAt },
    })
    return { cookie, csrfToken, expiresAt }
  }

  /** The session a cookie names, unless it is unknown, idle too long or past its absolute expiry. */
  async resolve(cookie: string | undefined): Promise<ManagerSessionView | undefined> {
    if (!cookie || !COOKIE_RE.test(cookie)) return undefined
    const id = idOf(cookie)
    const row = await this.db.prisma.managerSession.findUnique({ where: { id } })
    if (!row) return undefined
    const now = this.clock.nowMs()
    if (now >= row.expiresAt.getTime() || now >= row.lastSeenAt.getTime() + this.limits.idleMs) {
      await this.end(id)
      return undefined
    }
    if (now - row.lastSeenAt.getTime() >= TOUCH_EVERY_MS) {
      await this.db.prisma.managerSession.updateMany({
        where: { id },
        data: { lastSeenAt: new Date(now) },
      })
    }
    return { id, did: row.did, csrfToken: row.csrfToken, expiresAt: row.expiresAt }
  }

  /** Whether `header` (X-CSRF-Token) is the session's token; compared in constant time. */
  checkCsrf(session: Pick<ManagerSessionView, 'csrfToken'>, header: unknown): boolean {
    if (typeof header !== 'string') return false
    const given = Buffer.from(header)
    const expected = Buffer.from(session.csrfToken)
    return given.length === expected.length && timingSafeEqual(given, expected)
  }

  async end(id: string): Promise<void> {
    await this.db.prisma.managerSession.deleteMany({ where: { id } })
  }

  /** Ends every session of `did` (log out everywhere); returns how many there were. */
  async endAll(did: string): Promise<number> {
    return (await this.db.prisma.managerSession.deleteMany({ where: { did } })).count
  }
}

export const SESSION_COOKIE = 'gatehouse_session'

/** The cookie `name` of a request, if it sent one. */
export function cookieOf(req: FastifyRequest, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const at = part.indexOf('=')
    if (at > 0 && part.slice(0, at).trim() === name) return part.slice(at + 1).trim()
  }
  return undefined
}

/** The session cookie of a request, if it sent one. */
export const sessionCookie = (req: FastifyRequest) => cookieOf(req, SESSION_COOKIE)

/** The cookie's session, or 401; with `csrf`, also the header's token, or 403. */
export async function requireSession(
  sessions: SessionService,
  req: FastifyRequest,
  csrf: boolean,
): Promise<ManagerSessionView> {
  const s = await sessions.resolve(sessionCookie(req))
  if (!s) throw new XrpcError(401, 'AuthenticationRequired', 'Log in first')
  // SameSite=Lax still sends the cookie on some cross-site requests; the token is what a page
  // of ours can read and another site cannot.
  if (csrf && !sessions.checkCsrf(s, req.headers['x-csrf-token']))
    throw new XrpcError(403, 'InvalidCsrfToken', 'X-CSRF-Token is missing or wrong')
  return s
}

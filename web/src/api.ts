/**
 * The dashboard's only door to Gatehouse: documented /api/v1 calls. A logged-in browser sends its
 * HttpOnly session cookie and, on every change, the session's CSRF token (docs/managers.md); a
 * dashboard opened with a pasted API token sends it as `Authorization: Bearer` instead.
 */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    message: string,
  ) {
    super(message)
  }
}

const TOKEN_KEY = 'gatehouse.apiToken'
let csrfToken: string | undefined

/** The pasted API token of this tab, if the dashboard was opened with one. */
export const apiToken = () => sessionStorage.getItem(TOKEN_KEY) ?? undefined
export function useApiToken(token: string | undefined) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token)
  else sessionStorage.removeItem(TOKEN_KEY)
  csrfToken = undefined
}

/** Called on any 401: the app shows its login page. */
let onLoggedOut: () => void = () => {}
export const whenLoggedOut = (fn: () => void) => {
  onLoggedOut = fn
}

/** `/authorities/{a}/spaces/{type}/{skey}…` with each part escaped. */
export const path = (...parts: string[]) => parts.map(encodeURIComponent).join('/')

async function headers(method: string, extra: Record<string, string>): Promise<Headers> {
  const out = new Headers(extra)
  const token = apiToken()
  if (token) out.set('authorization', `Bearer ${token}`)
  else if (method !== 'GET') {
    csrfToken ??= (await call<{ csrfToken: string }>('GET', '/session')).csrfToken
    out.set('x-csrf-token', csrfToken)
  }
  return out
}

/** The raw response of a call; a refusal becomes an ApiError with the API's own name and message. */
export async function request(
  method: string,
  route: string,
  body?: BodyInit | object,
  extra: Record<string, string> = {},
): Promise<Response> {
  const raw =
    body === undefined ||
    body instanceof Blob ||
    body instanceof ReadableStream ||
    typeof body === 'string'
  const init: RequestInit = {
    method,
    credentials: 'same-origin',
    headers: await headers(method, raw ? extra : { 'content-type': 'application/json', ...extra }),
    body: raw ? (body as BodyInit | undefined) : JSON.stringify(body),
  }
  const res = await fetch(`/api/v1${route}`, init)
  if (res.ok) return res
  const err = (await res.json().catch(() => ({}))) as { error?: string; message?: string }
  if (res.status === 401) {
    csrfToken = undefined
    onLoggedOut()
  }
  const message =
    res.status === 403
      ? `Not allowed: ${err.message ?? 'your role does not permit this'}`
      : (err.message ?? res.statusText)
  throw new ApiError(res.status, err.error ?? `HTTP ${res.status}`, message)
}

/** A JSON call; 204 gives undefined. */
export async function call<T = unknown>(method: string, route: string, body?: object): Promise<T> {
  const res = await request(method, route, body)
  return (res.status === 204 ? undefined : await res.json()) as T
}

/** Every page of a paged list (up to `max` items). */
export async function all<T>(route: string, key: string, max = 1000): Promise<T[]> {
  const out: T[] = []
  let cursor: string | undefined
  do {
    const sep = route.includes('?') ? '&' : '?'
    const page = await call<Record<string, unknown> & { cursor?: string }>(
      'GET',
      `${route}${cursor ? `${sep}cursor=${encodeURIComponent(cursor)}` : ''}`,
    )
    out.push(...((page[key] as T[]) ?? []))
    cursor = page.cursor
  } while (cursor && out.length < max)
  return out
}

/** The text of a failure, for a status region. */
export const failure = (err: unknown) =>
  err instanceof ApiError
    ? `${err.message} (${err.error})`
    : `Something went wrong: ${String((err as Error)?.message ?? err)}`

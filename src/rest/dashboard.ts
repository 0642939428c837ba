import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { XrpcError } from '../errors.js'
import { PACKAGE_ROOT } from '../paths.js'

/** Where `npm run build` (scripts/build-web.mjs) writes the dashboard. */
export const WEB_DIR = join(PACKAGE_ROOT, 'dist', 'web')

/** Every dashboard answer (the shell, its assets, the join pages): nothing but our own origin. */
export const DASHBOARD_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
  "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

interface Built {
  /** The hashed file names: `app.{hash}.js` and `app.{hash}.css`. */
  js: string
  css: string
  files: Map<string, Buffer>
}

let cache: Built | undefined

/** The built dashboard, read once (a few tens of KiB); undefined when it was never built. */
function assets(): Built | undefined {
  if (cache) return cache
  try {
    const manifest = JSON.parse(readFileSync(join(WEB_DIR, 'manifest.json'), 'utf8')) as {
      js: string
      css: string
    }
    const files = new Map(
      [manifest.js, manifest.css].map((f) => [f, readFileSync(join(WEB_DIR, f))]),
    )
    cache = { ...manifest, files }
    return cache
  } catch {
    return undefined
  }
}

function current(): Built {
  const a = assets()
  if (!a)
    throw new XrpcError(503, 'DashboardNotBuilt', 'The dashboard is not built: run npm run build')
  return a
}

/** The headers every dashboard response carries. */
export function dashboardHeaders(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', DASHBOARD_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'same-origin')
}

/** An HTML page with the dashboard's stylesheet and script (when built). */
function html(title: string, header: string, main: string, app = false): string {
  const built = assets()
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8">` +
    `<meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<title>${title}</title><link rel="icon" href="data:,">` +
    (built
      ? `<link rel="stylesheet" href="/assets/${built.css}">` +
        `<script type="module" src="/assets/${built.js}"></script>`
      : '') +
    `</head><body${app ? ' data-app="dashboard"' : ''}><a class="skip" href="#main">Skip to content</a>` +
    `<header class="top">${header}</header>${main}</body></html>`
  )
}

/**
 * A server-rendered page in the dashboard's look (the join pages). Its forms start logins, which
 * redirect to the user's authorization server: CSP's `form-action 'self'` blocks a form's redirect
 * to another origin, so the dashboard's script turns their submissions into plain navigations.
 */
export function pageHtml(title: string, body: string): string {
  return html(
    `${title} · Gatehouse`,
    `<span class="brand">Gatehouse</span>`,
    `<main id="main" class="narrow"><h1>${title}</h1>${body}` +
      `<noscript><p class="error">Logging in from this page needs JavaScript.</p></noscript></main>`,
  )
}

/**
 * The managers' dashboard (web/, docs/dashboard.md): its HTML shell at `/` and at every client
 * route under `/a/`, and its two hashed assets, cached for ever since a change changes their names.
 */
export function registerDashboard(app: FastifyInstance): void {
  const shell = (_req: unknown, reply: FastifyReply) => {
    current()
    return dashboardHeaders(reply)
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-cache')
      .send(
        html(
          'Gatehouse',
          `<a class="brand" href="/">Gatehouse</a><nav id="nav" aria-label="Account"></nav>`,
          `<main id="main" tabindex="-1"><p role="status">Loading…</p>` +
            `<noscript><p>The dashboard needs JavaScript. The REST API is described at <a href="/api/v1/docs">/api/v1/docs</a>.</p></noscript></main>`,
          true,
        ),
      )
  }
  app.get('/', shell)
  app.get('/a/*', shell)
  app.get('/assets/:name', async (req, reply) => {
    const { name } = req.params as { name: string }
    dashboardHeaders(reply)
    const body = current().files.get(name)
    if (!body) throw new XrpcError(404, 'NotFound', 'No such asset')
    return reply
      .type(name.endsWith('.js') ? 'text/javascript; charset=utf-8' : 'text/css; charset=utf-8')
      .header('cache-control', 'public, max-age=31536000, immutable')
      .send(body)
  })
}

import { z } from 'zod'
import { SESSION_COOKIE } from '../managers/sessions.js'
import { API_PREFIX, type RestRoute } from './route.js'

/** A zod schema as JSON Schema 2020-12 (OpenAPI 3.1's dialect), the side a caller sends or gets. */
function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, {
    target: 'draft-2020-12',
    io,
    unrepresentable: 'any',
  }) as Record<string, unknown>
  return rest
}

function parameters(schema: z.ZodObject | undefined, where: 'path' | 'query') {
  return Object.entries(schema?.shape ?? {}).map(([name, field]) => {
    const f = field as z.ZodType
    return {
      name,
      in: where,
      required: where === 'path' || !f.safeParse(undefined).success,
      ...(f.description ? { description: f.description } : {}),
      schema: jsonSchema(f, 'input'),
    }
  })
}

const operationId = (r: RestRoute) =>
  r.method.toLowerCase() +
  r.path
    .split(/[/{}-]+/)
    .filter(Boolean)
    .map((w) => w[0]!.toUpperCase() + w.slice(1))
    .join('')

/** The OpenAPI 3.1 document of the REST API, made from the same schemas that validate it. */
export function openApiDocument(routes: RestRoute[], version: string, serverUrl: string) {
  const paths: Record<string, Record<string, unknown>> = {}
  for (const r of routes) {
    const status = r.response ? String(r.status ?? 200) : '204'
    const encoding = r.responseEncoding ?? 'application/json'
    ;(paths[r.path] ??= {})[r.method.toLowerCase()] = {
      operationId: operationId(r),
      summary: r.summary,
      tags: [r.tag],
      parameters: [
        ...parameters(r.params, 'path'),
        ...parameters(r.query, 'query'),
        ...(r.idempotent
          ? [
              {
                name: 'Idempotency-Key',
                in: 'header',
                required: false,
                schema: { type: 'string', maxLength: 200 },
              },
            ]
          : []),
      ],
      ...(r.body
        ? {
            requestBody: {
              required: true,
              content: {
                [r.bodyEncoding ?? 'application/json']: { schema: jsonSchema(r.body, 'input') },
              },
            },
          }
        : {}),
      responses: {
        [status]: {
          description: r.response
            ? r.responseEncoding
              ? 'one JSON value per line'
              : 'OK'
            : 'No Content',
          ...(r.response
            ? { content: { [encoding]: { schema: jsonSchema(r.response, 'output') } } }
            : {}),
        },
        '4XX': { $ref: '#/components/responses/Error' },
        '5XX': { $ref: '#/components/responses/Error' },
      },
    }
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Gatehouse managers’ API',
      version,
      description:
        'Manage authorities, spaces, members, roles and API tokens. Authenticate with an API ' +
        'token (Authorization: Bearer gh_…) or the session cookie of a login; calls that change ' +
        'something with the cookie send its CSRF token in X-CSRF-Token.',
    },
    servers: [{ url: `${serverUrl}${API_PREFIX}` }],
    security: [{ token: [] }, { session: [] }],
    paths,
    components: {
      securitySchemes: {
        token: { type: 'http', scheme: 'bearer', description: 'an API token, gh_…' },
        session: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE },
      },
      responses: {
        Error: {
          description: 'A refusal: its name and a sentence',
          content: {
            'application/json': {
              schema: {
                type: 'object',
                properties: { error: { type: 'string' }, message: { type: 'string' } },
                required: ['error', 'message'],
              },
            },
          },
        },
      },
    },
  }
}

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

/** The reference page: the document rendered as plain HTML, served from here (no script, no CDN). */
export function referencePage(doc: ReturnType<typeof openApiDocument>): string {
  const ops = Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => ({
      path,
      method,
      op: op as Record<string, any>,
    })),
  )
  // A block that scrolls sideways must take keyboard focus, or its overflow is out of reach.
  const json = (v: unknown) => `<pre tabindex="0">${escape(JSON.stringify(v, null, 2))}</pre>`
  const body = ops
    .map(({ path, method, op }) => {
      const params = (
        op.parameters as { name: string; in: string; required: boolean; description?: string }[]
      )
        .map(
          (p) =>
            `<li><code>${escape(p.name)}</code> (${p.in}${p.required ? ', required' : ''})${p.description ? `: ${escape(p.description)}` : ''}</li>`,
        )
        .join('')
      const request = op.requestBody ? `<h4>Request body</h4>${json(op.requestBody.content)}` : ''
      const ok = Object.entries(op.responses as Record<string, any>).find(([s]) => /^2/.test(s))
      return `<section id="${escape(op.operationId)}"><h3><span class="m">${method.toUpperCase()}</span> <code>${escape(path)}</code></h3>
<p>${escape(op.summary)}</p>${params ? `<ul>${params}</ul>` : ''}${request}
<h4>Response ${ok?.[0]}</h4>${ok?.[1].content ? json(ok[1].content) : '<p>No body.</p>'}</section>`
    })
    .join('\n')
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escape(doc.info.title)}</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}pre{background:#f4f4f4;padding:.5rem;overflow:auto;font-size:13px}.m{background:#234;color:#fff;padding:0 .4rem;border-radius:3px}section{border-top:1px solid #ddd;margin-top:1.5rem}</style>
</head><body><h1>${escape(doc.info.title)} <small>${escape(doc.info.version)}</small></h1>
<p>${escape(doc.info.description)}</p><p>Base URL <code>${escape(doc.servers[0]!.url)}</code>; the document: <a href="openapi.json">openapi.json</a>.</p>
${body}</body></html>`
}

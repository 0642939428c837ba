/**
 * The XRPC layer over real loopback HTTP: every failure is `{ error, message }` with the right status
 * (501 unknown method, 400 wrong HTTP method / bad params / bad JSON, 413, 415, 429, 500 with nothing
 * leaked, 503 when the database cannot take a write now), params and input go through zod, outputs are checked in test mode, and request ids flow.
 */
import { connect } from 'node:net'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { z } from 'zod'
import { defineProcedure, defineQuery } from '../../src/lexicon/method.js'
import { param, spaceRef } from '../../src/lexicon/formats.js'
import { toXrpcError } from '../../src/errors.js'
import { TestArbiter, type TestLike } from '../_helpers/arbiter.js'

const echo = defineQuery({
  nsid: 'dev.gatehouse.test.echo',
  params: z.object({
    space: param.string(spaceRef),
    limit: param.integer({ min: 1, max: 1000, default: 100 }),
    flag: param.boolean().optional(),
    tags: param.array(z.string()).optional(),
  }),
  output: z.object({
    space: z.string(),
    limit: z.number(),
    flag: z.boolean().optional(),
    tags: z.array(z.string()).optional(),
  }),
  errors: ['SpaceNotFound'],
})
const store = defineProcedure({
  nsid: 'dev.gatehouse.test.store',
  input: z.object({ name: z.string().min(1) }).strict(),
  output: z.object({ stored: z.string() }),
  errors: ['SpaceNotFound'],
})
const boom = defineQuery({ nsid: 'dev.gatehouse.test.boom', output: z.object({}) })
const badOutput = defineQuery({
  nsid: 'dev.gatehouse.test.badOutput',
  output: z.object({ n: z.number() }),
})
const refuse = defineProcedure({
  nsid: 'dev.gatehouse.test.refuse',
  input: undefined,
  errors: ['SpaceNotFound'],
})

const SECRET_DETAIL = 'db password is hunter2'

async function arbiter(
  t: TestLike,
  env?: Record<string, string>,
  extra?: (app: FastifyInstance) => void,
) {
  return TestArbiter.create(t, {
    env,
    beforeListen(app) {
      extra?.(app)
      app.xrpc.add(echo, { handler: async ({ params }) => params })
      app.xrpc.add(store, { handler: async ({ input }) => ({ stored: input.name }) })
      app.xrpc.add(boom, {
        handler: async () => {
          throw new Error(SECRET_DETAIL)
        },
      })
      app.xrpc.add(badOutput, { handler: async () => ({ n: 'not a number' }) as never })
      app.xrpc.add(refuse, {
        handler: async ({ fail }) => {
          throw fail('SpaceNotFound', 'No such space here')
        },
      })
    },
  })
}

const SPACE = 'at://did:plc:abc123/space/com.example.forum/main'

async function body(res: Response) {
  return (await res.json()) as Record<string, unknown>
}

t.test('an unknown NSID is 501 MethodNotImplemented, on GET and POST', async (t) => {
  const a = await arbiter(t)
  for (const method of ['GET', 'POST']) {
    const res = await a.fetch('/xrpc/com.example.nope', { method })
    t.equal(res.status, 501)
    t.same(await body(res), { error: 'MethodNotImplemented', message: 'Method not implemented' })
  }
})

t.test('the wrong HTTP method on a served NSID is 400 InvalidRequest', async (t) => {
  const a = await arbiter(t)
  const post = await a.fetch('/xrpc/dev.gatehouse.server.describeServer', { method: 'POST' })
  t.equal(post.status, 400)
  t.same(await body(post), {
    error: 'InvalidRequest',
    message: 'Incorrect HTTP method (POST): expected GET',
  })
  const get = await a.fetch('/xrpc/dev.gatehouse.test.store')
  t.equal(get.status, 400)
  t.match(await body(get), { error: 'InvalidRequest', message: /expected POST/ })
})

t.test('params are validated and converted', async (t) => {
  const a = await arbiter(t)
  const ok = await a.fetch(
    `/xrpc/dev.gatehouse.test.echo?space=${encodeURIComponent(SPACE)}&flag=false&tags=a`,
  )
  t.equal(ok.status, 200)
  t.same(await body(ok), { space: SPACE, limit: 100, flag: false, tags: ['a'] })

  const cases: [string, RegExp][] = [
    ['', /space/],
    [`space=${encodeURIComponent('at://handle.example/space/x.y.z/k')}`, /space reference/],
    [`space=${encodeURIComponent(SPACE)}&limit=abc`, /limit/],
    [`space=${encodeURIComponent(SPACE)}&limit=0`, /limit/],
    [`space=${encodeURIComponent(SPACE)}&limit=1001`, /limit/],
    [`space=${encodeURIComponent(SPACE)}&limit=1&limit=2`, /limit: must be given once/],
    [`space=${encodeURIComponent(SPACE)}&flag=yes`, /flag/],
  ]
  for (const [query, message] of cases) {
    const res = await a.fetch(`/xrpc/dev.gatehouse.test.echo?${query}`)
    t.equal(res.status, 400, query)
    t.match(await body(res), { error: 'InvalidRequest', message })
  }
})

t.test('procedure input: JSON only, validated, bounded', async (t) => {
  const a = await arbiter(t)
  const post = (b: string | undefined, type?: string) =>
    a.fetch('/xrpc/dev.gatehouse.test.store', {
      method: 'POST',
      body: b,
      headers: type ? { 'content-type': type } : {},
    })
  const ok = await post(JSON.stringify({ name: 'x' }), 'application/json; charset=utf-8')
  t.equal(ok.status, 200)
  t.same(await body(ok), { stored: 'x' })

  const malformed = await post('{"name": ', 'application/json')
  t.equal(malformed.status, 400)
  t.same(await body(malformed), {
    error: 'InvalidRequest',
    message: 'Request body is not valid JSON',
  })

  const invalid = await post(JSON.stringify({ name: '' }), 'application/json')
  t.equal(invalid.status, 400)
  t.match(await body(invalid), { error: 'InvalidRequest', message: /^Invalid input: name/ })

  const extra = await post(JSON.stringify({ name: 'x', admin: true }), 'application/json')
  t.equal(extra.status, 400)

  const proto = await post('{"name":"x","__proto__":{"admin":true}}', 'application/json')
  t.equal(proto.status, 400, 'prototype poisoning refused')
  t.match(await body(proto), { error: 'InvalidRequest' })

  const missing = await post(undefined)
  t.equal(missing.status, 400)
  t.match(await body(missing), { error: 'InvalidRequest', message: /JSON request body/ })

  const text = await post('name=x', 'text/plain')
  t.equal(text.status, 415)
  t.match(await body(text), { error: 'UnsupportedMediaType' })

  const big = await post(JSON.stringify({ name: 'x'.repeat(2 * 1024 * 1024) }), 'application/json')
  t.equal(big.status, 413)
  t.same(await body(big), { error: 'PayloadTooLarge', message: 'Request body is too large' })
})

t.test('a declared refusal keeps its lexicon name', async (t) => {
  const a = await arbiter(t)
  const res = await a.fetch('/xrpc/dev.gatehouse.test.refuse', { method: 'POST' })
  t.equal(res.status, 400)
  t.same(await body(res), { error: 'SpaceNotFound', message: 'No such space here' })
})

t.test('an unexpected error is a generic 500; the detail goes to the log only', async (t) => {
  const a = await arbiter(t)
  const res = await a.fetch('/xrpc/dev.gatehouse.test.boom')
  t.equal(res.status, 500)
  const b = await body(res)
  t.same(b, { error: 'InternalServerError', message: 'Internal server error' })
  t.notMatch(JSON.stringify(b), /hunter2/)
  const logged = a.logs.entries.find((e) => e.msg === 'request failed')
  t.ok(logged, 'logged at error')
  t.equal(logged?.level, 50)
  t.match(JSON.stringify(logged), /hunter2/)
})

t.test(
  'a database that cannot take a write now is 503; other database errors stay 500',
  async (t) => {
    const coded = (code: string) => Object.assign(new Error('driver'), { code })
    for (const code of [
      'SQLITE_FULL',
      'SQLITE_IOERR',
      'SQLITE_IOERR_WRITE',
      'SQLITE_READONLY',
      'SQLITE_READONLY_DBMOVED',
      '53100',
      '53300',
      '25006',
    ]) {
      // As the driver throws it, and wrapped the ways Prisma wraps it (a raw query's in its meta).
      const raw = Object.assign(new Error('prisma'), {
        code: 'P2010',
        meta: { driverAdapterError: new Error('adapter', { cause: { code } }) },
      })
      for (const err of [coded(code), new Error('prisma', { cause: coded(code) }), raw])
        t.match(toXrpcError(err), { status: 503, error: 'ServiceUnavailable' }, code)
    }
    for (const code of ['SQLITE_CORRUPT', 'SQLITE_IOERRX', '5310', '23505'])
      t.match(toXrpcError(coded(code)), { status: 500, error: 'InternalServerError' }, code)
  },
)

t.test('outputs are checked against their schema in test mode', async (t) => {
  const a = await arbiter(t)
  const res = await a.fetch('/xrpc/dev.gatehouse.test.badOutput')
  t.equal(res.status, 500)
  t.match(a.logs.text(), /dev\.gatehouse\.test\.badOutput: Invalid output: n/)
})

t.test('paths outside /xrpc are 404 in the same envelope', async (t) => {
  const a = await arbiter(t)
  const res = await a.fetch('/nope')
  t.equal(res.status, 404)
  t.same(await body(res), { error: 'NotFound', message: 'Not found' })
})

t.test('request ids: generated, or carried over from a plain incoming id', async (t) => {
  const a = await arbiter(t)
  const fresh = await a.fetch('/xrpc/_health')
  t.match(fresh.headers.get('x-request-id'), /^[0-9a-f-]{36}$/)
  const carried = await a.fetch('/xrpc/_health', { headers: { 'x-request-id': 'edge-42' } })
  t.equal(carried.headers.get('x-request-id'), 'edge-42')
  const hostile = await a.fetch('/xrpc/_health', { headers: { 'x-request-id': 'a b<script>' } })
  t.not(hostile.headers.get('x-request-id'), 'a b<script>')

  // The id is on every line about the request: the access line, a refusal, a failure.
  await a.fetch('/xrpc/dev.gatehouse.test.refuse', {
    method: 'POST',
    headers: { 'x-request-id': 'edge-43' },
  })
  await a.fetch('/xrpc/dev.gatehouse.test.boom', { headers: { 'x-request-id': 'edge-44' } })
  const lines = (id: string) => a.logs.entries.filter((e) => e.reqId === id).map((e) => e.msg)
  t.same(lines('edge-42'), ['request'])
  t.same(lines('edge-43'), ['request refused', 'request'])
  t.same(lines('edge-44'), ['request failed', 'request'])
  t.match(
    a.logs.entries.find((e) => e.reqId === 'edge-42'),
    { subsystem: 'gatehouse:xrpc', method: 'GET', url: '/xrpc/_health', status: 200 },
  )
})

t.test('authorization headers and secret query values never reach the log', async (t) => {
  const a = await arbiter(t)
  await a.fetch('/xrpc/com.example.nope?token=s3cr3t-query&cursor=plain', {
    headers: { authorization: 'Bearer s3cr3t-header', dpop: 's3cr3t-dpop' },
  })
  const text = a.logs.text()
  t.notMatch(text, /s3cr3t/)
  t.match(text, /cursor=plain/)
})

t.test('the rate limit answers 429 RateLimitExceeded, and spares health checks', async (t) => {
  const a = await arbiter(t, { GATEHOUSE_RATE_LIMIT_PER_MINUTE: '3' })
  const statuses: number[] = []
  for (let i = 0; i < 4; i++) {
    statuses.push((await a.fetch('/xrpc/dev.gatehouse.server.describeServer')).status)
  }
  t.same(statuses, [200, 200, 200, 429])
  const limited = await a.fetch('/xrpc/dev.gatehouse.server.describeServer')
  t.match(await body(limited), { error: 'RateLimitExceeded' })
  t.ok(limited.headers.get('retry-after'))
  t.equal(
    limited.headers.get('retry-after'),
    limited.headers.get('x-ratelimit-reset'),
    'Retry-After says when the window resets, as x-ratelimit-reset does',
  )
  t.equal((await a.fetch('/xrpc/_health')).status, 200)
})

t.test('a client that hangs up mid-body is logged at info, not as our failure', async (t) => {
  let reading!: () => void
  const bodyRead = new Promise<void>((resolve) => (reading = resolve))
  const a = await arbiter(t, undefined, (app) =>
    app.addHook('preParsing', async (req) => {
      if (req.id === 'hangs-up') reading()
    }),
  )
  const socket = connect(Number(new URL(a.url).port), '127.0.0.1')
  socket.write(
    'POST /xrpc/dev.gatehouse.test.store HTTP/1.1\r\nHost: x\r\nx-request-id: hangs-up\r\n' +
      'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"name":',
  )
  await bodyRead
  socket.destroy()
  const seen = () => a.logs.entries.filter((e) => e.reqId === 'hangs-up')
  for (let i = 0; i < 200 && seen().length === 0; i++) await new Promise((r) => setTimeout(r, 25))
  t.match(seen(), [{ level: 30, msg: 'request aborted by the client' }])
  t.notOk(
    a.logs.entries.some((e) => (e.level as number) >= 50),
    'nothing at error level',
  )
})

/**
 * Host-name lookups are rationed (limitLookups): getaddrinfo holds a thread of libuv's pool, which
 * also verifies exchange signatures, for as long as a resolver takes. A lookup that takes its time
 * is played by a timer; the fetcher's own lookups run against this machine's resolver (localhost).
 */
import { createServer } from 'node:http'
import type { LookupAddress } from 'node:dns'
import t from 'tap'
import { limitLookups, SafeFetcher, type LookupAll } from '../../src/net/safe-fetch.js'

/** A lookup that answers `127.0.0.1` after `ms`, counting how many run at once. */
function slowLookup(ms: number) {
  const seen = { running: 0, most: 0, calls: [] as string[] }
  const lookup: LookupAll = (hostname, cb) => {
    seen.calls.push(hostname)
    seen.running++
    seen.most = Math.max(seen.most, seen.running)
    setTimeout(() => {
      seen.running--
      cb(
        hostname === 'fails.example' ? Object.assign(new Error('no'), { code: 'ENOTFOUND' }) : null,
        [{ address: '127.0.0.1', family: 4 }],
      )
    }, ms)
  }
  return { lookup, seen }
}

const run = (lookup: LookupAll, name: string) =>
  new Promise<{ err: NodeJS.ErrnoException | null; addresses: LookupAddress[] }>((resolve) =>
    lookup(name, (err, addresses) => resolve({ err, addresses })),
  )

t.test('at most `max` lookups run at once; the others wait their turn, in order', async (t) => {
  const { lookup, seen } = slowLookup(30)
  const limited = limitLookups(lookup, 2, 10)
  const names = ['a', 'b', 'c', 'd', 'e'].map((n) => `${n}.example`)
  const answers = await Promise.all(names.map((n) => run(limited, n)))
  t.equal(seen.most, 2, 'never more than two at once')
  t.same(seen.calls, names, 'started in the order asked')
  for (const a of answers)
    t.same(a, { err: null, addresses: [{ address: '127.0.0.1', family: 4 }] })
})

t.test('a failed lookup frees its place too', async (t) => {
  const { lookup, seen } = slowLookup(10)
  const limited = limitLookups(lookup, 1, 10)
  const [failed, next] = await Promise.all([
    run(limited, 'fails.example'),
    run(limited, 'b.example'),
  ])
  t.equal(failed.err?.code, 'ENOTFOUND')
  t.equal(next.err, null, 'the one waiting behind it ran')
  t.equal(seen.most, 1)
})

t.test('beyond the queue a lookup fails at once with EAI_AGAIN', async (t) => {
  const { lookup, seen } = slowLookup(50)
  const limited = limitLookups(lookup, 1, 2)
  const all = ['a', 'b', 'c', 'd'].map((n) => run(limited, `${n}.example`))
  const refused = await all[3]!
  t.equal(refused.err?.code, 'EAI_AGAIN')
  // Answered while the first lookup still runs and the two queued have not started.
  t.same(
    { running: seen.running, calls: seen.calls.length },
    { running: 1, calls: 1 },
    'without waiting for the others',
  )
  const rest = await Promise.all(all.slice(0, 3))
  t.same(
    rest.map((r) => r.err),
    [null, null, null],
    'the running one and the two queued are answered',
  )
  t.equal(seen.calls.length, 3, 'the refused one never reached the resolver')
})

t.test('requests by host name go through on both agents, guarded and trusted', async (t) => {
  const server = createServer((req, res) => res.writeHead(200).end('ok'))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => server.close())
  const port = (server.address() as { port: number }).port
  const trusted = new SafeFetcher({
    allowPrivate: false,
    trusted: { origin: `http://localhost:${port}`, allows: () => true },
    timeoutMs: 2000,
    maxBytes: 1024,
  })
  t.teardown(() => trusted.close())
  const res = await trusted.request(`http://localhost:${port}/x`)
  t.equal(res.status, 200, 'a trusted origin by name: looked up and reached')
  const open = new SafeFetcher({ allowPrivate: true, timeoutMs: 2000, maxBytes: 1024 })
  t.teardown(() => open.close())
  const many = await Promise.all(
    Array.from({ length: 8 }, (_, i) => open.request(`http://localhost:${port}/${i}`)),
  )
  t.same(
    many.map((r) => r.status),
    Array(8).fill(200),
    'more requests by name than lookups at once: all served',
  )
})

import { Pool } from 'undici'
import { parentPort } from 'node:worker_threads'

/**
 * The load generator behind httpLoad(), in a thread of its own that serves one load after another:
 * its code stays compiled from one phase to the next, so no phase pays for a cold client (V8's
 * compiler threads would otherwise take cores from the server in the first seconds of each phase).
 */
parentPort.on('message', async ({ id, opts }) => {
  parentPort.postMessage({ id, result: await load(opts) })
})

/** @param {import("./_lib.js").LoadOptions} opts */
async function load(opts) {
  const targets = [opts.url].flat().map((u) => new URL(u))
  const latencies = []
  let errors = 0
  let sent = 0
  const max = opts.maxRequests ?? Number.POSITIVE_INFINITY

  // undici, the HTTP client under Node's fetch and the one Gatehouse's outbound requests use: about
  // half the CPU per request of node:http's client. The load generator shares the machine's two cores
  // with what it measures, and a raw-POST baseline should be the best this machine does.
  const pools = new Map()
  const poolFor = (url) => {
    let pool = pools.get(url.origin)
    if (!pool) {
      pool = new Pool(url.origin, { connections: opts.concurrency, pipelining: 1 })
      pools.set(url.origin, pool)
    }
    return pool
  }

  const one = async (i, url = targets[i % targets.length], record = true) => {
    const body = record && opts.bodies?.length ? opts.bodies[i % opts.bodies.length] : undefined
    const extra = record && opts.headers?.length ? opts.headers[i % opts.headers.length] : undefined
    const t0 = performance.now()
    try {
      const res = await poolFor(url).request({
        path: url.pathname + url.search,
        method: record ? (opts.method ?? 'GET') : 'GET',
        headers: {
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...extra,
        },
        body,
      })
      await res.body.dump()
      if (record) {
        latencies.push(performance.now() - t0)
        if (res.statusCode >= 400) errors++
      }
    } catch {
      if (record) errors++
    }
  }

  // Warm-up, not recorded: the client's own code and its keep-alive connections get hot on a no-op
  // URL of the same server at the same pace, so a cold client does not show up as server latency.
  if (opts.warmupUrl) {
    const url = new URL(opts.warmupUrl)
    const until = performance.now() + (opts.warmupMs ?? 1000)
    const interval = 1000 / (opts.ratePerSec ?? 1000)
    const inflight = new Set()
    while (performance.now() < until) {
      for (let k = 0; k < Math.min(opts.concurrency, 4); k++) {
        const p = one(0, url, false).finally(() => inflight.delete(p))
        inflight.add(p)
      }
      await new Promise((r) => setTimeout(r, interval * Math.min(opts.concurrency, 4)))
    }
    await Promise.all(inflight)
  }

  const deadline = performance.now() + opts.seconds * 1000
  const start = performance.now()
  if (opts.ratePerSec) {
    // Open loop: a request every 1/rate seconds on a schedule that does not wait for answers.
    const interval = 1000 / opts.ratePerSec
    const inflight = new Set()
    let next = performance.now()
    while (performance.now() < deadline && sent < max) {
      const wait = next - performance.now()
      if (wait > 0) await new Promise((r) => setTimeout(r, wait))
      next += interval
      if (inflight.size >= opts.concurrency) {
        errors++ // the server fell behind: count the dropped request
        continue
      }
      const p = one(sent++).finally(() => inflight.delete(p))
      inflight.add(p)
    }
    await Promise.all(inflight)
  } else {
    await Promise.all(
      Array.from({ length: opts.concurrency }, async () => {
        while (performance.now() < deadline && sent < max) {
          await one(sent++)
        }
      }),
    )
  }
  const elapsed = (performance.now() - start) / 1000
  await Promise.all([...pools.values()].map((p) => p.close()))
  return {
    requests: latencies.length,
    perSecond: latencies.length / elapsed,
    latenciesMs: latencies,
    errors,
  }
}

import { Agent, request } from 'node:http'
import { parentPort, workerData } from 'node:worker_threads'

/** The load generator behind httpLoad(), in its own thread. */
/** @type {import("./_lib.js").LoadOptions} */
const opts = workerData
const target = new URL(opts.url)
const agent = new Agent({ keepAlive: true, maxSockets: opts.concurrency })
const latencies = []
let errors = 0
let sent = 0
const max = opts.maxRequests ?? Number.POSITIVE_INFINITY

const one = (i, url = target, record = true) =>
  new Promise((resolve) => {
    const body = record && opts.bodies?.length ? opts.bodies[i % opts.bodies.length] : undefined
    const extra = record && opts.headers?.length ? opts.headers[i % opts.headers.length] : undefined
    const t0 = performance.now()
    const req = request(
      url,
      {
        method: record ? (opts.method ?? 'GET') : 'GET',
        agent,
        headers: {
          ...(body !== undefined
            ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }
            : {}),
          ...extra,
        },
      },
      (res) => {
        res.resume()
        res.on('end', () => {
          if (record) {
            latencies.push(performance.now() - t0)
            if ((res.statusCode ?? 500) >= 400) errors++
          }
          resolve()
        })
      },
    )
    req.on('error', () => {
      if (record) errors++
      resolve()
    })
    req.end(body)
  })

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
agent.destroy()
const result = {
  requests: latencies.length,
  perSecond: latencies.length / elapsed,
  latenciesMs: latencies,
  errors,
}
parentPort.postMessage(result)

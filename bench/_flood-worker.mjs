import { createServer } from 'node:http'
import { parentPort, workerData } from 'node:worker_threads'

/**
 * The registration-flood bench's syncers, in a thread of their own (as separate programs would be):
 * one healthy syncer that answers at once and records, in the shared array, how many notifications
 * it received (slot 0, notified for Atomics.waitAsync) and when the last one arrived (slot 1, ms
 * since the epoch with sub-millisecond precision, comparable across threads); and `hanging` syncers,
 * each on a port of its own (the relay's breaker is per endpoint origin), that read a request and
 * never answer it.
 */
const { hanging, shared } = workerData
const counts = new Int32Array(shared, 0, 2)
const arrivals = new Float64Array(shared, 8, 1)

const listen = (server) =>
  new Promise((r) =>
    server.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${server.address().port}`)),
  )

const healthy = createServer((req, res) => {
  req.resume()
  req.on('end', () => {
    if (req.url?.endsWith('/com.atproto.space.notifyWrite')) {
      arrivals[0] = performance.timeOrigin + performance.now()
      Atomics.add(counts, 0, 1)
      Atomics.notify(counts, 0)
    }
    res.writeHead(200).end()
  })
})
healthy.keepAliveTimeout = 30_000
const healthyOrigin = await listen(healthy)

const hangingOrigins = []
for (let i = 0; i < hanging; i++) {
  const server = createServer((req) => {
    req.resume()
    Atomics.add(counts, 1, 1)
  })
  hangingOrigins.push(await listen(server))
}
parentPort.postMessage({ healthyOrigin, hangingOrigins })

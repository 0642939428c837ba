import { createServer } from 'node:http'
import { parentPort, workerData } from 'node:worker_threads'

/**
 * The bench's syncers, in a thread of their own (as separate programs would be, they must not share
 * Gatehouse's event loop): `servers` loopback HTTP servers, each serving every syncer as a path
 * `/s/<index>/…`. Each notification received is counted in the shared array by syncer index; the
 * last slot holds the total.
 */
const { servers: count, shared } = workerData
const received = new Uint32Array(shared)
const totalSlot = received.length - 1
const origins = []
for (let s = 0; s < count; s++) {
  const server = createServer((req, res) => {
    const m = /^\/s\/(\d+)\//.exec(req.url ?? '')
    req.resume()
    req.on('end', () => {
      if (m) {
        Atomics.add(received, Number(m[1]), 1)
        Atomics.add(received, totalSlot, 1)
      }
      res.writeHead(200).end()
    })
  })
  server.keepAliveTimeout = 30_000
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  origins.push(`http://127.0.0.1:${server.address().port}`)
}
parentPort.postMessage(origins)

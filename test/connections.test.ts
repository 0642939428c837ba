/**
 * Connection limits over real loopback TCP: a request whose body trickles is cut at the request
 * timeout with 408 RequestTimeout; connections past the per-address or the total limit are closed as
 * soon as they are accepted, without an HTTP response, while other clients (health checks) are
 * still served.
 */
import { connect, type Socket } from 'node:net'
import { platform } from 'node:os'
import t from 'tap'
import { addressKey } from '../src/connections.js'
import { TestArbiter } from './_helpers/arbiter.js'

/** A generous bound on what must happen "at once" or "at the timeout", so a broken limit fails. */
const GUARD_MS = 30_000

interface Held {
  socket: Socket
  /** Everything the server sent. */
  received: () => string
  /** Resolves when the server closed the connection (or rejects after GUARD_MS). */
  closed: Promise<void>
}

/** Opens a TCP connection to `port` from `localAddress`, collecting what the server sends. */
async function open(port: number, localAddress = '127.0.0.1'): Promise<Held> {
  const socket = connect({ port, host: '127.0.0.1', localAddress })
  let data = ''
  socket.on('data', (chunk) => (data += chunk.toString('utf8')))
  socket.on('error', () => {})
  const closed = new Promise<void>((resolve, reject) => {
    const guard = setTimeout(() => {
      reject(new Error('the server kept the connection'))
      socket.destroy()
    }, GUARD_MS)
    socket.once('close', () => {
      clearTimeout(guard)
      resolve()
    })
  })
  closed.catch(() => {})
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  return { socket, received: () => data, closed }
}

/** Waits until the server holds `n` connections (counted by the server itself, not by time). */
async function serverHolds(a: TestArbiter, n: number): Promise<void> {
  for (;;) {
    const count = await new Promise<number>((resolve, reject) =>
      a.app.server.getConnections((err, c) => (err ? reject(err) : resolve(c))),
    )
    if (count >= n) return
    await new Promise((r) => setTimeout(r, 10))
  }
}

const logged = (a: TestArbiter, msg: string) => a.logs.entries.find((e) => e.msg === msg)

const SLOW_POST =
  'POST /xrpc/com.example.slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
  'Content-Length: 100000\r\n\r\n{"a":"'

t.test('a body that trickles is cut at the request timeout with 408 RequestTimeout', async (t) => {
  const a = await TestArbiter.create(t, { env: { GATEHOUSE_REQUEST_TIMEOUT_MS: '1000' } })
  const slow = await open(Number(new URL(a.url).port))
  slow.socket.write(SLOW_POST)
  // A byte at a time, so the connection is never idle: only a limit on the whole request ends it.
  const drip = setInterval(() => slow.socket.writable && slow.socket.write('x'), 100)
  t.teardown(() => clearInterval(drip))
  await slow.closed
  clearInterval(drip)
  t.match(slow.received(), /^HTTP\/1\.1 408 Request Timeout\r\n/)
  t.match(slow.received(), /\r\n\r\n\{"error":"RequestTimeout","message":"[^"]+"\}$/)
  t.ok(logged(a, 'request not received in time: connection closed'), 'logged')
  t.equal((await a.fetch('/xrpc/_health')).status, 200, 'the server goes on serving')
})

t.test(
  'connections past the per-address limit are closed at once; other addresses are served',
  { skip: platform() !== 'linux' && 'needs 127.0.0.2 on the loopback interface (Linux)' },
  async (t) => {
    const a = await TestArbiter.create(t, { env: { GATEHOUSE_MAX_CONNECTIONS_PER_ADDRESS: '5' } })
    const port = Number(new URL(a.url).port)
    const held: Held[] = []
    for (let i = 0; i < 5; i++) {
      const h = await open(port, '127.0.0.2')
      h.socket.write(SLOW_POST)
      held.push(h)
    }
    t.teardown(() => held.forEach((h) => h.socket.destroy()))
    await serverHolds(a, 5)

    const over = await open(port, '127.0.0.2')
    await over.closed
    t.equal(over.received(), '', 'closed without an HTTP response')
    t.ok(
      held.every((h) => !h.socket.destroyed),
      'the connections within the limit are kept',
    )
    t.equal((await a.fetch('/xrpc/_health')).status, 200, 'another address is served')
    t.match(logged(a, 'connections refused: over the connection limits'), {
      level: 40,
      refusedOverPerAddress: 1,
    })

    // A freed slot can be used again.
    held.pop()!.socket.destroy()
    for (let i = 0; ; i++) {
      const again = await open(port, '127.0.0.2')
      again.socket.write('GET /xrpc/_health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
      await again.closed
      if (again.received().startsWith('HTTP/1.1 200')) break
      // The server may not have seen the freed connection close yet.
      if (i > 100) t.fail('the freed slot was never reused')
      await new Promise((r) => setTimeout(r, 20))
    }
  },
)

t.test('connections past the total limit are closed at once', async (t) => {
  const a = await TestArbiter.create(t, { env: { GATEHOUSE_MAX_CONNECTIONS: '3' } })
  const port = Number(new URL(a.url).port)
  const held: Held[] = []
  for (let i = 0; i < 3; i++) {
    const h = await open(port)
    h.socket.write(SLOW_POST)
    held.push(h)
  }
  t.teardown(() => held.forEach((h) => h.socket.destroy()))
  await serverHolds(a, 3)
  const over = await open(port)
  await over.closed
  t.equal(over.received(), '', 'closed without an HTTP response')
  t.ok(
    held.every((h) => !h.socket.destroyed),
    'the connections within the limit are kept',
  )
  t.match(logged(a, 'connections refused: over the connection limits'), {
    level: 40,
    refusedOverTotal: 1,
  })
})

t.test('clients are counted per IPv4 address and per IPv6 /64', async (t) => {
  t.equal(addressKey('127.0.0.2'), '127.0.0.2')
  t.equal(addressKey('::ffff:192.0.2.7'), '192.0.2.7', 'an IPv4-mapped address counts as IPv4')
  t.equal(addressKey('2001:db8:1:2:aaaa::1'), addressKey('2001:db8:1:2:bbbb::9'))
  t.not(addressKey('2001:db8:1:2::1'), addressKey('2001:db8:1:3::1'))
})

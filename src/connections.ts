import type { Server } from 'node:http'
import type { Socket } from 'node:net'
import ipaddr from 'ipaddr.js'
import type { Logger } from './logger.js'

/**
 * TCP connections held, in all and per client address (IPv6 per /64, one subscriber's block);
 * both close without an HTTP response: under a flood, writing one costs more than the refusal.
 */

export interface ConnectionLimits {
  maxConnections: number
  maxConnectionsPerAddress: number
}

/** How often a summary of refused connections is logged while refusals go on. */
const REFUSAL_LOG_INTERVAL_MS = 60_000

/** The key a client address is counted under: the IPv4 address, or the IPv6 /64. */
export function addressKey(address: string | undefined): string {
  if (!address) return '?'
  try {
    const ip = ipaddr.process(address)
    if (ip.kind() === 'ipv4') return ip.toString()
    const parts = (ip as ipaddr.IPv6).parts.slice(0, 4)
    return `${parts.map((p) => p.toString(16)).join(':')}::/64`
  } catch {
    return address
  }
}

/** Installs both limits on `server` (call before it listens). Refusals are logged, throttled. */
export function limitConnections(server: Server, limits: ConnectionLimits, log: Logger): void {
  server.maxConnections = limits.maxConnections
  const open = new Map<string, number>()
  const refused = { total: 0, perAddress: 0, since: 0 }
  const noteRefusal = (kind: 'total' | 'perAddress', address: string) => {
    refused[kind]++
    const now = Date.now()
    // A line when refusals start, then a count per interval: not a line per connection.
    if (refused.since !== 0 && now - refused.since < REFUSAL_LOG_INTERVAL_MS) return
    log.warn(
      {
        refusedOverTotal: refused.total,
        refusedOverPerAddress: refused.perAddress,
        lastAddress: address,
        maxConnections: limits.maxConnections,
        maxConnectionsPerAddress: limits.maxConnectionsPerAddress,
      },
      'connections refused: over the connection limits',
    )
    refused.total = 0
    refused.perAddress = 0
    refused.since = now
  }

  // Emitted by Node for a connection it closed because of maxConnections.
  server.on('drop', (data?: { remoteAddress?: string }) =>
    noteRefusal('total', addressKey(data?.remoteAddress)),
  )
  server.on('connection', (socket: Socket) => {
    const key = addressKey(socket.remoteAddress)
    const n = open.get(key) ?? 0
    if (n >= limits.maxConnectionsPerAddress) {
      socket.destroy()
      noteRefusal('perAddress', key)
      return
    }
    open.set(key, n + 1)
    socket.once('close', () => {
      const left = (open.get(key) ?? 1) - 1
      if (left > 0) open.set(key, left)
      else open.delete(key)
    })
  })
}

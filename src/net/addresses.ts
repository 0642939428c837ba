import { isIP } from 'node:net'
import ipaddr from 'ipaddr.js'

/**
 * Public means ipaddr.js's `unicast` (IANA special ranges maintained upstream); an IPv6 transition
 * address (NAT64, 6to4, Teredo) is public only when every IPv4 address it embeds is.
 */

type IPv6 = ipaddr.IPv6

/** The four bytes of an IPv4 address in an RFC 6052 address with a `prefixLen`-bit prefix. */
function rfc6052(bytes: number[], prefixLen: number): number[] {
  const out: number[] = []
  // Bits 64–71 (byte 8) are the reserved "u" octet: the IPv4 address flows around it.
  for (let i = prefixLen / 8; out.length < 4; i++) if (i !== 8) out.push(bytes[i]!)
  return out
}

/** IPv6 ranges that embed IPv4 addresses, and where. IPv4-mapped (::ffff:0:0/96) is ipaddr.process's. */
const TRANSITION: { prefix: [IPv6, number]; embedded: (bytes: number[]) => number[][] }[] = [
  // IPv4-compatible, ::a.b.c.d (RFC 4291 §2.5.5.1); `::` and `::1` land here too, not public.
  { prefix: ipaddr.IPv6.parseCIDR('::/96'), embedded: (b) => [b.slice(12)] },
  // IPv4-translated, ::ffff:0:a.b.c.d (RFC 6145).
  { prefix: ipaddr.IPv6.parseCIDR('::ffff:0:0:0/96'), embedded: (b) => [b.slice(12)] },
  // NAT64 well-known prefix, 64:ff9b::a.b.c.d (RFC 6052).
  { prefix: ipaddr.IPv6.parseCIDR('64:ff9b::/96'), embedded: (b) => [rfc6052(b, 96)] },
  // NAT64 local-use (RFC 8215): the prefix length (48 to 96) is the network's, so every reading.
  {
    prefix: ipaddr.IPv6.parseCIDR('64:ff9b:1::/48'),
    embedded: (b) => [48, 56, 64, 96].map((len) => rfc6052(b, len)),
  },
  // 6to4, 2002:AABB:CCDD::/48 (RFC 3056): the IPv4 address in bits 16–47.
  { prefix: ipaddr.IPv6.parseCIDR('2002::/16'), embedded: (b) => [b.slice(2, 6)] },
  // Teredo (RFC 4380): the server's IPv4 in bits 32–63, the client's, inverted, in the last 32.
  {
    prefix: ipaddr.IPv6.parseCIDR('2001::/32'),
    embedded: (b) => [b.slice(4, 8), b.slice(12).map((x) => x ^ 0xff)],
  },
]

const isPublicIPv4 = (octets: number[]) => new ipaddr.IPv4(octets).range() === 'unicast'

/** True for every address that is not public unicast, and for anything not an IP address. */
export function isNonPublicAddress(address: string): boolean {
  if (!isIP(address)) return true
  let ip: ipaddr.IPv4 | IPv6
  try {
    // IPv4-mapped addresses (::ffff:a.b.c.d) come back as the IPv4 address they map.
    ip = ipaddr.process(address)
  } catch {
    return true
  }
  if (ip.kind() === 'ipv4') return (ip as ipaddr.IPv4).range() !== 'unicast'
  const v6 = ip as IPv6
  const bytes = v6.toByteArray()
  for (const range of TRANSITION) {
    if (v6.match(range.prefix)) return !range.embedded(bytes).every(isPublicIPv4)
  }
  return v6.range() !== 'unicast'
}

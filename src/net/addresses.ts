import { isIP } from 'node:net'
import ipaddr from 'ipaddr.js'

/**
 * Which IP addresses count as public, for the SSRF guard (safe-fetch.ts). The ranges are
 * ipaddr.js's (IANA's special-purpose registries, maintained upstream rather than by us), and only
 * an address in none of them (`unicast`) is public: private, loopback, link-local, unique-local,
 * site-local, carrier-grade NAT, broadcast, multicast, reserved, documentation, benchmarking,
 * anycast and everything IANA adds later are not.
 *
 * IPv6 transition ranges carry an IPv4 address, and a packet sent to one is delivered to that IPv4
 * address by a NAT64 gateway, a 6to4 relay or a Teredo server, whatever the IPv6 range is called.
 * So such an address is judged by the IPv4 address(es) it embeds, and is public only when every one
 * of them is.
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
  // IPv4-compatible, ::a.b.c.d (RFC 4291 §2.5.5.1, deprecated). `::` and `::1` land here too, as
  // 0.0.0.0 and 0.0.0.1, which are not public either.
  { prefix: ipaddr.IPv6.parseCIDR('::/96'), embedded: (b) => [b.slice(12)] },
  // IPv4-translated, ::ffff:0:a.b.c.d (RFC 6145).
  { prefix: ipaddr.IPv6.parseCIDR('::ffff:0:0:0/96'), embedded: (b) => [b.slice(12)] },
  // NAT64 well-known prefix, 64:ff9b::a.b.c.d (RFC 6052).
  { prefix: ipaddr.IPv6.parseCIDR('64:ff9b::/96'), embedded: (b) => [rfc6052(b, 96)] },
  // NAT64 local-use prefix (RFC 8215): the network chooses a prefix length from 48 to 96, and the
  // length sets where the IPv4 address sits. We cannot know which one a gateway uses, so every
  // reading must be public.
  {
    prefix: ipaddr.IPv6.parseCIDR('64:ff9b:1::/48'),
    embedded: (b) => [48, 56, 64, 96].map((len) => rfc6052(b, len)),
  },
  // 6to4, 2002:AABB:CCDD::/48 (RFC 3056): the IPv4 address in bits 16–47.
  { prefix: ipaddr.IPv6.parseCIDR('2002::/16'), embedded: (b) => [b.slice(2, 6)] },
  // Teredo, 2001:0:<server>:<flags>:<port>:<client> (RFC 4380): the server's IPv4 address in bits
  // 32–63 and the client's, each bit inverted, in the last 32.
  {
    prefix: ipaddr.IPv6.parseCIDR('2001::/32'),
    embedded: (b) => [b.slice(4, 8), b.slice(12).map((x) => x ^ 0xff)],
  },
]

const isPublicIPv4 = (octets: number[]) => new ipaddr.IPv4(octets).range() === 'unicast'

/**
 * True for every address that is not a public unicast address, including an IPv6 address whose
 * embedded IPv4 address is not public, and anything that is not an IP address at all.
 */
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

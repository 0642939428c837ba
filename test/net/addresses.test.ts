/**
 * The SSRF guard's address classification (src/net/addresses.ts): only public unicast addresses
 * pass, and an IPv6 transition address passes only when the IPv4 address(es) it embeds would.
 * Each range both ways: a non-public example refused, and where the range can hold one, a public
 * example allowed.
 */
import t from 'tap'
import { FetchError, isNonPublicAddress, SafeFetcher } from '../../src/net/safe-fetch.js'

/** Teredo's client field: the IPv4 address with every bit inverted. */
const teredoClient = (v4: string) =>
  v4
    .split('.')
    .map((o) => (Number(o) ^ 0xff).toString(16).padStart(2, '0'))
    .join('')
    .replace(/^(....)(....)$/, '$1:$2')

const NOT_PUBLIC: [string, string][] = [
  // IPv4
  ['0.0.0.0', 'this network'],
  ['10.1.2.3', 'private 10/8'],
  ['172.16.0.1', 'private 172.16/12'],
  ['192.168.1.1', 'private 192.168/16'],
  ['127.0.0.1', 'loopback'],
  ['169.254.169.254', 'link-local (cloud metadata)'],
  ['100.64.0.1', 'carrier-grade NAT'],
  ['192.0.0.8', 'IETF protocol assignments'],
  ['192.0.2.1', 'documentation'],
  ['198.18.0.1', 'benchmarking'],
  ['224.0.0.1', 'multicast'],
  ['240.0.0.1', 'reserved'],
  ['255.255.255.255', 'broadcast'],
  // IPv6
  ['::', 'unspecified'],
  ['::1', 'loopback'],
  ['fe80::1', 'link-local'],
  ['fe80::1%eth0', 'link-local with a zone'],
  ['fd00::1', 'unique local'],
  ['fec0::1', 'site-local (deprecated, fec0::/10)'],
  ['ff02::1', 'multicast'],
  ['100::1', 'discard'],
  ['2001:db8::1', 'documentation'],
  ['2001:2::1', 'benchmarking'],
  ['2001:10::1', 'ORCHID'],
  // IPv4-mapped
  ['::ffff:127.0.0.1', 'IPv4-mapped loopback'],
  ['::ffff:7f00:1', 'IPv4-mapped loopback, hex'],
  ['::ffff:10.0.0.1', 'IPv4-mapped private'],
  // IPv4-compatible ::/96
  ['::7f00:1', 'IPv4-compatible loopback'],
  ['::a00:1', 'IPv4-compatible private'],
  ['::127.0.0.1', 'IPv4-compatible loopback, dotted'],
  ['::a9fe:a9fe', 'IPv4-compatible link-local'],
  // IPv4-translated ::ffff:0:0:0/96
  ['::ffff:0:7f00:1', 'IPv4-translated loopback'],
  // NAT64 64:ff9b::/96
  ['64:ff9b::10.0.0.1', 'NAT64 private'],
  ['64:ff9b::7f00:1', 'NAT64 loopback'],
  // NAT64 local use 64:ff9b:1::/48: each prefix length's reading counts
  ['64:ff9b:1::a00:1', 'local-use NAT64, private in the /96 reading'],
  ['64:ff9b:1:a00:1:0:808:808', 'local-use NAT64, private in the /48 reading only'],
  // 6to4 2002::/16
  ['2002:7f00:1::1', '6to4 of loopback'],
  ['2002:c0a8:101::1', '6to4 of 192.168.1.1'],
  ['2002:a9fe:a9fe::1', '6to4 of the metadata address'],
  // Teredo 2001::/32
  [`2001:0:808:808:0:0:${teredoClient('127.0.0.1')}`, 'Teredo client loopback'],
  [`2001:0:808:808:0:0:${teredoClient('10.0.0.1')}`, 'Teredo client private'],
  [`2001:0:a00:1:0:0:${teredoClient('8.8.4.4')}`, 'Teredo with a private server'],
  ['2001:0:4136:e378:8000:63bf:3fff:fdd2', "RFC 4380's example (client 192.0.2.45)"],
  // not an address
  ['not-an-ip', 'not an IP address'],
  ['', 'empty'],
]

const PUBLIC: [string, string][] = [
  ['8.8.8.8', 'IPv4'],
  ['1.1.1.1', 'IPv4'],
  ['2606:4700:4700::1111', 'global unicast IPv6'],
  ['2a00:1450:4001:80b::200e', 'global unicast IPv6'],
  ['::ffff:8.8.8.8', 'IPv4-mapped public'],
  ['::808:808', 'IPv4-compatible public'],
  ['::ffff:0:808:808', 'IPv4-translated public'],
  ['64:ff9b::8.8.8.8', 'NAT64 public'],
  ['64:ff9b:1:808:8:808:808:808', 'local-use NAT64, public in every reading'],
  ['2002:808:808::1', '6to4 of 8.8.8.8'],
  [`2001:0:808:808:0:0:${teredoClient('8.8.4.4')}`, 'Teredo, public server and client'],
]

t.test('non-public addresses, by range', async (t) => {
  for (const [a, what] of NOT_PUBLIC) t.equal(isNonPublicAddress(a), true, `${what}: ${a}`)
})

t.test('public addresses, transition ranges judged by their IPv4', async (t) => {
  for (const [a, what] of PUBLIC) t.equal(isNonPublicAddress(a), false, `${what}: ${a}`)
})

t.test('a URL naming a non-public IPv6 literal is refused before any connection', async (t) => {
  const fetcher = new SafeFetcher({ allowPrivate: false, timeoutMs: 500, maxBytes: 1024 })
  t.teardown(() => fetcher.close())
  for (const [a, what] of NOT_PUBLIC) {
    if (!a.includes(':') || a.includes('%')) continue
    const err = await fetcher.request(`http://[${a}]:1/x`).catch((e: unknown) => e)
    t.match(err, FetchError, what)
    t.equal((err as FetchError).kind, 'blocked', `${what}: ${a}`)
  }
})

t.test('GATEHOUSE_ALLOW_PRIVATE_NETWORK lets them through', async (t) => {
  const fetcher = new SafeFetcher({ allowPrivate: true, timeoutMs: 500, maxBytes: 1024 })
  t.teardown(() => fetcher.close())
  t.equal(fetcher.check('http://[2002:7f00:1::1]:1/x').hostname, '[2002:7f00:1::1]')
  t.equal(fetcher.check('http://[fec0::1]/x').hostname, '[fec0::1]')
})

import { encodeTid } from '../src/spaces/tid.js'
import type { WebIdentity } from '../test/_helpers/identities.js'
import {
  delegationToken,
  exchangeHeaders,
  newHolderKey,
  serviceJwt,
} from '../test/_helpers/tokens.js'
import { benchWorld, importMembers } from './_world.js'
import { httpLoad, percentile, type Bench, type LoadResult } from './_lib.js'

/**
 * What a large member import does to everyone else: p99 of putMember, notifyWrite and
 * getSpaceCredential on another space, and of health, at a paced rate, first idle (the baseline),
 * then while a bulk import of GATEHOUSE_BENCH_IMPORT_MEMBERS (default 1,000,000) runs on the same
 * `gatehouse serve` process. Target: each p99 under the import at most 5 × its idle p99.
 *
 * The load is measured in rounds of ROUND_SEC, all four kinds side by side, from the load thread;
 * rounds go on while the import runs, so every figure of the second phase was taken under it (the
 * round in which the import ends included).
 */
const IMPORT_MEMBERS = Number(process.env.GATEHOUSE_BENCH_IMPORT_MEMBERS ?? 1_000_000)
/** Requests per second of each kind. */
const RATE = 25
const ROUND_SEC = 5
const IDLE_ROUNDS = 4
const KINDS = ['putMember', 'notifyWrite', 'getSpaceCredential', 'health'] as const
type Kind = (typeof KINDS)[number]

const bench: Bench = {
  name: 'import-interference',
  async run() {
    const membersOnly = {
      readPolicy: { kind: 'member-list' },
      writePolicy: { kind: 'member-list' },
      appAccess: { kind: 'open' },
    } as const
    const world = await benchWorld({ serverProcess: true, skey: 'imported', policy: membersOnly })
    const { ctx, url, web, authority, close } = world
    try {
      // Everyone else lives in another space of the same authority.
      const other = (
        await ctx.spaces.create({
          authority: authority.did,
          spaceType: 'com.example.forum',
          skey: 'everyone-else',
          ...membersOnly,
        })
      ).uri
      const admin = web.create('admin')
      await ctx.managers.change(authority.did, admin.did, 'admin', 'operator')
      const writers = Array.from({ length: 20 }, (_, i) => web.create(`writer${i}`))
      const readers = Array.from({ length: 20 }, (_, i) => web.create(`reader${i}`))
      for (const u of [...writers, ...readers])
        await ctx.spaces.putMember(other, u.did, { read: true, write: true })

      let rev = Date.now() * 1000
      let putN = 0
      /** One round's requests of each kind, made before the round: signing is the client's work. */
      const requests = (n: number) => {
        const nowSec = Math.floor(Date.now() / 1000)
        const put = Array.from({ length: n }, () => {
          const lxm = 'com.atproto.simplespace.putMember'
          return {
            header: {
              authorization: `Bearer ${serviceJwt({ iss: admin, aud: authority.did, lxm, nowSec, ttlSec: 300 })}`,
            },
            body: JSON.stringify({
              space: other,
              did: `did:plc:p${String(putN++).padStart(23, '0')}`,
              read: true,
              write: putN % 2 === 0,
            }),
          }
        })
        const notify = Array.from({ length: n }, (_, i) => {
          const writer: WebIdentity = writers[i % writers.length]!
          return {
            header: {
              authorization: `Bearer ${serviceJwt({ iss: writer, aud: `${authority.did}#atproto_space_host`, lxm: 'com.atproto.space.notifyWrite', nowSec, ttlSec: 300 })}`,
            },
            body: JSON.stringify({
              space: other,
              repo: writer.did,
              repoRev: encodeTid(BigInt(++rev), 3),
              hash: { $bytes: 'AAAA' },
            }),
          }
        })
        const cred = Array.from({ length: n }, (_, i) => ({
          header: exchangeHeaders(
            delegationToken({
              user: readers[i % readers.length]!,
              space: other,
              nowSec,
              exp: nowSec + 300,
            }),
            newHolderKey(),
          ),
          body: JSON.stringify({ space: other }),
        }))
        return { put, notify, cred }
      }

      const xrpc = (nsid: string) => `${url}/xrpc/${nsid}`
      /** One round: the four kinds side by side at RATE each. */
      const round = async (): Promise<Record<Kind, LoadResult>> => {
        const n = RATE * ROUND_SEC
        const r = requests(n)
        const paced = { concurrency: 32, seconds: ROUND_SEC + 5, maxRequests: n, ratePerSec: RATE }
        const post = (nsid: string, reqs: { header: Record<string, string>; body: string }[]) =>
          httpLoad({
            url: xrpc(nsid),
            method: 'POST',
            headers: reqs.map((q) => q.header),
            bodies: reqs.map((q) => q.body),
            ...paced,
          })
        const [putMember, notifyWrite, getSpaceCredential, health] = await Promise.all([
          post('com.atproto.simplespace.putMember', r.put),
          post('com.atproto.space.notifyWrite', r.notify),
          post('com.atproto.space.getSpaceCredential', r.cred),
          httpLoad({ url: `${url}/xrpc/_health`, ...paced }),
        ])
        return { putMember, notifyWrite, getSpaceCredential, health }
      }
      const collect = () => ({
        latencies: Object.fromEntries(KINDS.map((k) => [k, [] as number[]])) as Record<
          Kind,
          number[]
        >,
        errors: 0,
        rounds: 0,
        /** Each round's worst latency of any kind, for the notes. */
        worst: [] as number[],
      })
      const add = (into: ReturnType<typeof collect>, got: Record<Kind, LoadResult>) => {
        for (const k of KINDS) {
          into.latencies[k].push(...got[k].latenciesMs)
          into.errors += got[k].errors
        }
        into.rounds++
        into.worst.push(Math.max(...KINDS.map((k) => got[k].latenciesMs.at(-1) ?? 0)))
      }

      // 1. Idle: one unmeasured round (caches, connections, JIT), then the baseline.
      await round()
      const idle = collect()
      for (let i = 0; i < IDLE_ROUNDS; i++) add(idle, await round())

      // 2. The same rounds while the import runs.
      let importEnded = false
      const importStart = performance.now()
      const importing = importMembers(
        world,
        IMPORT_MEMBERS,
        (i) => `did:plc:i${String(i).padStart(23, '0')}`,
      ).finally(() => (importEnded = true))
      const busy = collect()
      while (!importEnded) add(busy, await round())
      const importSec = await importing
      const wholeImportSec = (performance.now() - importStart) / 1000

      const p99 = (c: ReturnType<typeof collect>, k: Kind) =>
        percentile(
          [...c.latencies[k]].sort((a, b) => a - b),
          99,
        )
      const figures = [
        { name: 'members imported', value: IMPORT_MEMBERS, unit: '' },
        { name: 'import duration (under the load)', value: importSec, unit: 's' },
        { name: 'import rate', value: IMPORT_MEMBERS / wholeImportSec, unit: 'members/s' },
        { name: 'rounds measured idle', value: idle.rounds, unit: '' },
        { name: 'rounds measured during the import', value: busy.rounds, unit: '' },
        ...KINDS.flatMap((k) => [
          { name: `${k} p99, idle (baseline)`, value: p99(idle, k), unit: 'ms' },
          { name: `${k} p99, during the import`, value: p99(busy, k), unit: 'ms' },
        ]),
        { name: 'errors or drops idle', value: idle.errors, unit: '' },
        { name: 'errors or drops during the import', value: busy.errors, unit: '' },
      ]
      const ratios = Object.fromEntries(
        KINDS.map((k) => [`${k} p99 during the import / idle`, p99(busy, k) / p99(idle, k)]),
      )
      const targets = Object.fromEntries(
        KINDS.map((k) => [
          `${k} p99 <= 5 x idle`,
          { target: '<= 5', met: p99(busy, k) / p99(idle, k) <= 5 },
        ]),
      )
      return {
        bench: 'import-interference',
        figures,
        ratios,
        targets,
        notes: [
          `worst latency per round (ms), idle: ${idle.worst.map((v) => v.toFixed(0)).join(', ')}`,
          `worst latency per round (ms), during the import: ${busy.worst.map((v) => v.toFixed(0)).join(', ')}`,
          `${RATE}/s of each kind, paced, in rounds of ${ROUND_SEC} s; putMember, notifyWrite and getSpaceCredential on another space of the same authority`,
        ],
      }
    } finally {
      await close()
    }
  },
}
export default bench

import {
  delegationToken,
  exchangeHeaders,
  newHolderKey,
  serviceJwt,
} from '../test/_helpers/tokens.js'
import { Pool } from 'undici'
import { benchWorld, importMembers } from './_world.js'
import { httpLoad, percentile, type Bench } from './_lib.js'

/**
 * A million-member space built through the bulk import endpoint, then: membership checks in process
 * and through getSpaceCredential, listMembers pages of 1,000, oplog since-queries, and peak RSS.
 * GATEHOUSE_BENCH_MEMBERS sets the size (default 1,000,000).
 */
const MEMBERS = Number(process.env.GATEHOUSE_BENCH_MEMBERS ?? 1_000_000)
const USERS = 50
/** Requests per timed phase: enough that a p99 is not just the single worst one. */
const SAMPLES = 500
const did = (i: number) => `did:plc:m${String(i).padStart(23, '0')}`

async function timed<T>(n: number, fn: (i: number) => Promise<T>): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < n; i++) {
    const t0 = performance.now()
    await fn(i)
    out.push(performance.now() - t0)
  }
  return out.sort((a, b) => a - b)
}

const bench: Bench = {
  name: 'members',
  async run({ seconds }) {
    const world = await benchWorld({
      serverProcess: true,
      skey: 'million',
      policy: {
        readPolicy: { kind: 'member-list' },
        writePolicy: { kind: 'member-list' },
        appAccess: { kind: 'open' },
      },
    })
    const { ctx, url, web, authority, space, close, serverPeakRssMb } = world
    try {
      const admin = web.create('admin')
      await ctx.managers.change(authority.did, admin.did, 'admin', 'operator')
      const users = Array.from({ length: USERS }, (_, i) => web.create(`user${i}`))
      const auth = (lxm: string) =>
        `Bearer ${serviceJwt({ iss: admin, aud: authority.did, lxm, nowSec: Math.floor(Date.now() / 1000) })}`

      // 1. Bulk import through HTTP, streamed.
      const importSec = await importMembers(world, MEMBERS, (i) =>
        i < USERS ? users[i]!.did : did(i),
      )

      // 2. Membership checks in process (random members and non-members).
      const check = await timed(5000, (i) =>
        ctx.spaces.members.isMember(
          space,
          did(Math.floor(Math.random() * MEMBERS * (i % 2 ? 1 : 2))),
          'read',
        ),
      )

      // 3. Through getSpaceCredential, sequentially.
      const n = Math.max(100, Math.round(seconds * 100))
      const nowSec = Math.floor(Date.now() / 1000)
      const headers = Array.from({ length: n + USERS }, (_, i) => ({
        ...exchangeHeaders(
          delegationToken({ user: users[i % USERS]!, space, nowSec, exp: nowSec + 900 }),
          newHolderKey(),
        ),
        'content-type': 'application/json',
      }))
      const target = `${url}/xrpc/com.atproto.space.getSpaceCredential`
      await httpLoad({
        url: target,
        method: 'POST',
        bodies: [JSON.stringify({ space })],
        headers: headers.slice(0, USERS),
        concurrency: 1,
        seconds: 30,
        maxRequests: USERS,
      })
      const exchange = await httpLoad({
        url: target,
        method: 'POST',
        bodies: [JSON.stringify({ space })],
        headers: headers.slice(USERS),
        concurrency: 1,
        seconds: seconds + 10,
        maxRequests: n,
      })

      // 4. listMembers pages of 1,000 from random cursors. Tokens are made before the clock starts:
      // signing them is the client's work, not the server's.
      // One keep-alive connection and undici's request API: the client's own cost stays small.
      const client = new Pool(url, { connections: 1 })
      const get = async (path: string, authorization: string) => {
        const r = await client.request({ path, method: 'GET', headers: { authorization } })
        await r.body.arrayBuffer()
        if (r.statusCode !== 200) throw new Error(`${path.split('?')[0]} ${r.statusCode}`)
      }
      const pageAuth = Array.from({ length: SAMPLES + 10 }, () =>
        auth('com.atproto.simplespace.listMembers'),
      )
      const page = (i: number) => {
        const cursor = did(Math.floor(Math.random() * MEMBERS))
        return get(
          `/xrpc/com.atproto.simplespace.listMembers?${new URLSearchParams({ space, limit: '1000', cursor })}`,
          pageAuth[i]!,
        )
      }
      for (let i = SAMPLES; i < SAMPLES + 10; i++) await page(i) // warm-up, not timed
      const pages = await timed(SAMPLES, page)

      // 5. Oplog since-queries from random points of the log.
      const revs = (
        await ctx.db.prisma.memberOp.findMany({
          where: { space },
          select: { rev: true },
          orderBy: { rev: 'asc' },
          skip: Math.floor(MEMBERS / 2),
          take: 1000,
        })
      ).map((r) => r.rev)
      const opsAuth = Array.from({ length: SAMPLES }, () =>
        auth('dev.gatehouse.simplespace.listMemberOps'),
      )
      const since = await timed(SAMPLES, (i) =>
        get(
          `/xrpc/dev.gatehouse.simplespace.listMemberOps?${new URLSearchParams({ space, since: revs[(i * 7) % revs.length]!, limit: '100' })}`,
          opsAuth[i]!,
        ),
      )
      await client.close()

      const rssMb = serverPeakRssMb!()
      const target60 = (MEMBERS / 1_000_000) * 60
      return {
        bench: 'members',
        figures: [
          { name: 'members', value: MEMBERS, unit: '' },
          { name: 'bulk import (HTTP, JSON lines)', value: importSec, unit: 's' },
          { name: 'import rate', value: MEMBERS / importSec, unit: 'members/s' },
          { name: 'membership check in process p50', value: percentile(check, 50), unit: 'ms' },
          { name: 'membership check in process p99', value: percentile(check, 99), unit: 'ms' },
          {
            name: 'getSpaceCredential p50',
            value: percentile(exchange.latenciesMs, 50),
            unit: 'ms',
          },
          {
            name: 'getSpaceCredential p99',
            value: percentile(exchange.latenciesMs, 99),
            unit: 'ms',
          },
          { name: 'listMembers page of 1,000 p50', value: percentile(pages, 50), unit: 'ms' },
          { name: 'listMembers page of 1,000 p99', value: percentile(pages, 99), unit: 'ms' },
          { name: 'oplog since-query (100 ops) p99', value: percentile(since, 99), unit: 'ms' },
          { name: 'peak RSS of the gatehouse serve process', value: rssMb, unit: 'MB' },
        ],
        ratios: { 'import time / 60 s target (scaled to size)': importSec / target60 },
        targets: {
          'import <= 60 s per million': {
            target: `<= ${target60.toFixed(0)} s`,
            met: importSec <= target60,
          },
          'in-process check p99 <= 1 ms': { target: '<= 1 ms', met: percentile(check, 99) <= 1 },
          'page p99 <= 20 ms': { target: '<= 20 ms', met: percentile(pages, 99) <= 20 },
          'RSS <= 300 MB': { target: '<= 300 MB', met: rssMb <= 300 },
        },
      }
    } finally {
      await close()
    }
  },
}
export default bench

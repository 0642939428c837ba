import { createServer } from 'node:http'
import { statSync } from 'node:fs'
import { sqlitePath } from '../src/db/locate.js'
import { encodeTid } from '../src/spaces/tid.js'
import { delegationToken, exchangeHeaders, newHolderKey } from '../test/_helpers/tokens.js'
import { benchWorld, registerSyncer, sendNotifyWrite } from './_world.js'
import { httpLoad, type Bench } from './_lib.js'

/**
 * Storage stays bounded under steady traffic: sustained getSpaceCredential exchanges and notifyWrite
 * writes (relayed to one syncer that answers and one that always fails, so dead letters pile up
 * too) for GATEHOUSE_BENCH_STORAGE_SECONDS (default 180), with short retention: 30 s credentials
 * pruned at expiry, 60 s delegation tokens, a 30 s retry window, dead letters kept 0 days. The janitor runs every ROUND_SEC
 * (in production: every 5 minutes, with retention in days). Prints the database size and row counts
 * each round; target: flat after the first retention period (FIRST_PERIOD_SEC here).
 */
const DURATION_SEC = Number(process.env.GATEHOUSE_BENCH_STORAGE_SECONDS ?? 180)
const ROUND_SEC = 10
const EXCHANGES_PER_SEC = 100
const WRITES_PER_SEC = 10
const TTL_SEC = 30
/** The longest retention here: a delegation token's nonce (60 s) and a janitor round after it. */
const FIRST_PERIOD_SEC = 90

const bench: Bench = {
  name: 'storage',
  async run() {
    const world = await benchWorld({
      skey: 'storage-seed',
      policy: {
        readPolicy: { kind: 'public' },
        writePolicy: { kind: 'public' },
        appAccess: { kind: 'open' },
      },
      env: {
        GATEHOUSE_CREDENTIAL_RETENTION_DAYS: '0',
        GATEHOUSE_DEAD_LETTER_RETENTION_DAYS: '0',
        GATEHOUSE_RELAY_RETRY_WINDOW_SEC: String(TTL_SEC),
        GATEHOUSE_RELAY_RETRY_BASE_MS: '1000',
      },
    })
    const { ctx, url, web, authority } = world
    const syncers = [200, 500].map((status) => {
      const server = createServer((req, res) => {
        req.resume()
        req.on('end', () => res.writeHead(status, { 'content-type': 'application/json' }).end('{}'))
      })
      return { server, status }
    })
    try {
      const space = (
        await ctx.spaces.create({
          authority: authority.did,
          spaceType: 'com.example.forum',
          skey: 'storage',
          readPolicy: { kind: 'public' },
          writePolicy: { kind: 'public' },
          appAccess: { kind: 'open' },
          credentialTtlSec: TTL_SEC,
        })
      ).uri
      for (const [i, s] of syncers.entries()) {
        await new Promise<void>((r) => s.server.listen(0, '127.0.0.1', r))
        const port = (s.server.address() as { port: number }).port
        const expires = new Date(Date.now() + 86_400_000)
        await registerSyncer(world, space, `syncer-${i}`, `http://127.0.0.1:${port}`, expires)
      }
      ctx.relay.start(200)
      const users = Array.from({ length: 50 }, (_, i) => web.create(`user${i}`))
      const writers = Array.from({ length: 20 }, (_, i) => web.create(`writer${i}`))
      const file = ctx.cfg.db.kind === 'sqlite' ? sqlitePath(ctx.cfg.db.url) : undefined
      const size = () => (file ? statSync(file).size : NaN)
      const wal = () =>
        file ? (statSync(`${file}-wal`, { throwIfNoEntry: false })?.size ?? 0) : NaN
      const p = ctx.db.prisma
      // Bytes in pages that hold data (freed pages are reused, so the file stops growing).
      const used = async () => {
        if (!file) return NaN
        const [pages] = await p.$queryRawUnsafe<{ n: number }[]>(
          'SELECT (page_count - freelist_count) * page_size AS n FROM pragma_page_count(), pragma_freelist_count(), pragma_page_size()',
        )
        return Number(pages!.n)
      }
      const rows = async () => ({
        usedKiB: Math.round((await used()) / 1024),
        walKiB: Math.round(wal() / 1024),
        credentials: await p.issuedCredential.count(),
        nonces: await p.replayNonce.count(),
        events: await p.spaceEvent.count(),
        deadLetters: await p.deadLetter.count(),
      })
      const startBytes = size()
      console.log(
        `  storage: start ${(startBytes / 1024).toFixed(0)} KiB`,
        JSON.stringify(await rows()),
      )
      let rev = Date.now() * 1000
      let exchanged = 0
      let written = 0
      const samples: { atSec: number; bytes: number; used: number }[] = []
      const pruned: Record<string, number> = {}
      const started = performance.now()
      while ((performance.now() - started) / 1000 < DURATION_SEC) {
        const nowSec = Math.floor(Date.now() / 1000)
        const n = EXCHANGES_PER_SEC * ROUND_SEC
        const headers = Array.from({ length: n }, (_, i) => ({
          ...exchangeHeaders(
            delegationToken({
              user: users[i % users.length]!,
              space,
              nowSec,
              // Short-lived, so their replay nonces expire (and are pruned) within the run too.
              exp: nowSec + 60,
            }),
            newHolderKey(),
          ),
          'content-type': 'application/json',
        }))
        const writing = (async () => {
          const end = performance.now() + ROUND_SEC * 1000
          for (let i = 0; performance.now() < end; i++) {
            await sendNotifyWrite(
              world,
              space,
              writers[i % writers.length]!,
              encodeTid(BigInt(++rev), 1),
            )
            written++
            await new Promise((r) => setTimeout(r, 1000 / WRITES_PER_SEC))
          }
        })()
        const load = await httpLoad({
          url: `${url}/xrpc/com.atproto.space.getSpaceCredential`,
          method: 'POST',
          bodies: [JSON.stringify({ space })],
          headers,
          concurrency: 4,
          seconds: ROUND_SEC,
          maxRequests: n,
        })
        await writing
        exchanged += load.requests - load.errors
        if (load.errors)
          console.log(`  storage: ${load.errors} of ${load.requests} exchanges failed`)
        for (const [table, n] of Object.entries(await ctx.janitor.run()))
          pruned[table] = (pruned[table] ?? 0) + n
        const atSec = Math.round((performance.now() - started) / 1000)
        samples.push({ atSec, bytes: size(), used: await used() })
        console.log(
          `  storage: ${atSec} s ${(size() / 1024).toFixed(0)} KiB`,
          JSON.stringify(await rows()),
        )
      }
      await ctx.relay.stop()
      const endBytes = size()
      // Flat after the first retention period: the largest size in the second half of the run
      // against the size once the longest retention has passed.
      const first = samples.find((x) => x.atSec >= FIRST_PERIOD_SEC) ?? samples[0]!
      const later = samples.filter((x) => x.atSec >= DURATION_SEC / 2)
      const growth = Math.max(...later.map((x) => x.bytes)) / first.bytes
      const usedGrowth = Math.max(...later.map((x) => x.used)) / first.used
      return {
        bench: 'storage',
        figures: [
          { name: 'duration', value: Math.round((performance.now() - started) / 1000), unit: 's' },
          { name: 'exchanges', value: exchanged, unit: '' },
          { name: 'notifyWrite writes', value: written, unit: '' },
          { name: 'database size at start', value: Math.round(startBytes / 1024), unit: 'KiB' },
          {
            name: `database size after ${first.atSec} s`,
            value: Math.round(first.bytes / 1024),
            unit: 'KiB',
          },
          { name: 'database size at end', value: Math.round(endBytes / 1024), unit: 'KiB' },
          ...Object.entries(pruned).map(([table, n]) => ({
            name: `pruned: ${table}`,
            value: n,
            unit: 'rows',
          })),
        ],
        ratios: {
          'largest file size in the second half ÷ after the first retention period': growth,
          'largest data pages in the second half ÷ after the first retention period': usedGrowth,
        },
        targets: {
          'flat after the first retention period (file)': {
            target: '≤ 1.25×',
            met: growth <= 1.25,
          },
        },
        notes: [
          'Sizes are of the database file (SQLite reuses freed pages, and never shrinks the file without VACUUM); its data pages (usedKiB) and the WAL (walKiB) are printed each round.',
          `${EXCHANGES_PER_SEC} exchanges/s and ${WRITES_PER_SEC} writes/s; credentials live ${TTL_SEC} s, retry window ${TTL_SEC} s, credential and dead-letter retention 0 days; the janitor runs every ${ROUND_SEC} s.`,
        ],
      }
    } finally {
      await ctx.relay.stop()
      for (const s of syncers) s.server.close()
      await world.close()
    }
  },
}
export default bench

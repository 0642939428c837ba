import { Worker } from 'node:worker_threads'
import { encodeTid } from '../src/spaces/tid.js'
import type { WebIdentity } from '../test/_helpers/identities.js'
import { benchWorld, registerSyncer, sendNotifyWrite } from './_world.js'
import { percentile, type Bench } from './_lib.js'

/**
 * One space's hanging syncers against another space's delivery: the latency from a notifyWrite to
 * an unrelated space until its (healthy) syncer holds the notification, first with nothing else
 * registered (the baseline), then with HANGING lanes on another space whose syncers read each
 * request and never answer (each on an origin of its own, so the per-endpoint breaker does not cut
 * them short), writes to that space keeping them busy. Target: within 2 × the idle latency. The
 * relay runs with its defaults (GATEHOUSE_RELAY_CONCURRENCY 32, a 5 s timeout); only the
 * per-space registration cap is raised, so that the flood fits on one space.
 */
const HANGING = Number(process.env.GATEHOUSE_BENCH_HANGING_LANES ?? 200)
const SAMPLES = 100
/**
 * Between two samples: a phase then spans about 25 s, several relay timeouts, so the flood is
 * measured while the flooded space's lanes time out, back off and start hanging again.
 */
const GAP_MS = 250
/** The flooded phase ends after this long even if fewer samples arrived (slow relays). */
const FLOOD_MAX_MS = 90_000
/** A notification not delivered within this long counts as this long. */
const GIVE_UP_MS = 30_000

/** Atomics.waitAsync (Node 20 has it; the project's TypeScript lib predates it). */
const waitAsync = (
  Atomics as unknown as {
    waitAsync(
      array: Int32Array,
      index: number,
      value: number,
      timeoutMs: number,
    ): { async: false; value: string } | { async: true; value: Promise<string> }
  }
).waitAsync

const bench: Bench = {
  name: 'registration-flood',
  async run() {
    const teardowns: (() => unknown)[] = []
    try {
      const shared = new SharedArrayBuffer(16)
      const counts = new Int32Array(shared, 0, 2)
      const arrivals = new Float64Array(shared, 8, 1)
      const syncers = new Worker(new URL('./_flood-worker.mjs', import.meta.url), {
        workerData: { hanging: HANGING, shared },
      })
      // Terminated before the world closes: the hanging requests then fail at once and the relay
      // stops without waiting out their timeouts.
      const stopSyncers = () => syncers.terminate()
      const { healthyOrigin, hangingOrigins } = await new Promise<{
        healthyOrigin: string
        hangingOrigins: string[]
      }>((resolve, reject) => {
        syncers.once('message', resolve)
        syncers.once('error', reject)
      })

      const open = {
        readPolicy: { kind: 'public' },
        writePolicy: { kind: 'public' },
        appAccess: { kind: 'open' },
      } as const
      const world = await benchWorld({
        skey: 'flooded',
        policy: open,
        env: { GATEHOUSE_REGISTRATIONS_PER_SPACE_MAX: String(Math.max(100, HANGING)) },
      })
      teardowns.push(() => world.close(), stopSyncers)
      const { ctx, url, web, authority } = world
      const flooded = world.space
      const unrelated = (
        await ctx.spaces.create({
          authority: authority.did,
          spaceType: 'com.example.forum',
          skey: 'unrelated',
          ...open,
        })
      ).uri
      const expires = new Date(Date.now() + 86_400_000)
      const register = async (space: string, name: string, endpoint: string) => {
        const did = await registerSyncer(world, space, name, endpoint, expires)
        await ctx.idResolver.resolve(did) // a running host has it cached
      }
      await register(unrelated, 'syncer', healthyOrigin)
      const writer = web.create('writer')
      await ctx.idResolver.resolve(writer.did)
      ctx.relay.start(50)

      let rev = Date.now() * 1000
      const notify = (space: string, who: WebIdentity) =>
        sendNotifyWrite(world, space, who, encodeTid(BigInt(++rev), 1))
      /** From sending a write to the unrelated space until its syncer holds it, in ms. */
      const deliver = async (): Promise<number> => {
        const before = Atomics.load(counts, 0)
        const t0 = performance.timeOrigin + performance.now()
        await notify(unrelated, writer)
        const waited = waitAsync(counts, 0, before, GIVE_UP_MS)
        const outcome = waited.async ? await waited.value : waited.value
        if (outcome === 'timed-out') return GIVE_UP_MS
        return arrivals[0]! - t0
      }
      const pause = (ms = GAP_MS) => new Promise((r) => setTimeout(r, ms))

      // 1. Idle: warm-up deliveries (not measured), then the baseline.
      for (let i = 0; i < 20; i++) {
        await deliver()
        await pause(20)
      }
      const idle: number[] = []
      for (let i = 0; i < SAMPLES; i++) {
        idle.push(await deliver())
        await pause()
      }

      // 2. The flood: HANGING lanes on the other space, all busy before the first sample.
      for (let i = 0; i < HANGING; i++) await register(flooded, `hangs${i}`, hangingOrigins[i]!)
      const attacker = web.create('attacker')
      await ctx.idResolver.resolve(attacker.did)
      await notify(flooded, attacker)
      const busyStart = Date.now()
      while (Atomics.load(counts, 1) < Math.min(HANGING, 8) && Date.now() - busyStart < 30_000)
        await new Promise((r) => setTimeout(r, 20))
      const flood: number[] = []
      const floodStart = Date.now()
      let lastAttack = Date.now()
      while (flood.length < SAMPLES && Date.now() - floodStart < FLOOD_MAX_MS) {
        flood.push(await deliver())
        // New writes to the flooded space keep its lanes with something to send.
        if (Date.now() - lastAttack > 2000) {
          await notify(flooded, attacker)
          lastAttack = Date.now()
        }
        await pause()
      }
      const hangingRequests = Atomics.load(counts, 1)
      await stopSyncers()

      idle.sort((a, b) => a - b)
      flood.sort((a, b) => a - b)
      const idleP99 = percentile(idle, 99)
      const floodP99 = percentile(flood, 99)
      const missed = flood.filter((v) => v >= GIVE_UP_MS).length
      return {
        bench: 'registration-flood',
        figures: [
          { name: 'hanging lanes on the flooded space', value: HANGING, unit: '' },
          {
            name: 'delivery to an unrelated syncer, idle p50',
            value: percentile(idle, 50),
            unit: 'ms',
          },
          { name: 'delivery to an unrelated syncer, idle p99', value: idleP99, unit: 'ms' },
          { name: 'delivery during the flood, p50', value: percentile(flood, 50), unit: 'ms' },
          { name: 'delivery during the flood, p99', value: floodP99, unit: 'ms' },
          { name: 'deliveries measured during the flood', value: flood.length, unit: '' },
          { name: `not delivered within ${GIVE_UP_MS / 1000} s`, value: missed, unit: '' },
          { name: 'requests the hanging syncers received', value: hangingRequests, unit: '' },
        ],
        ratios: {
          'flood p99 / idle p99': floodP99 / idleP99,
          'flood p50 / idle p50': percentile(flood, 50) / percentile(idle, 50),
        },
        targets: {
          'flood p99 <= 2 x idle p99': { target: '<= 2', met: floodP99 / idleP99 <= 2 },
        },
        notes: [
          `one write at a time to the unrelated space, ${SAMPLES} per phase, ${GAP_MS} ms apart (the flood phase stops after ${FLOOD_MAX_MS / 1000} s); latency from sending notifyWrite until the syncer holds it`,
        ],
      }
    } finally {
      for (const fn of teardowns.reverse()) await fn()
    }
  },
}
export default bench

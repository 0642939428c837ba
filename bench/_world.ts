import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../src/config.js'
import { createContext, type AppContext } from '../src/context.js'
import { createLogger } from '../src/logger.js'
import type { SpacePolicy } from '../src/policy/types.js'
import { buildServer } from '../src/server.js'
import { DidWebHost, type WebIdentity } from '../test/_helpers/identities.js'

/**
 * What every benchmark starts from: a real Gatehouse in production mode on loopback (its own data dir
 * and SQLite database), a did:web host, an authority Gatehouse holds the key of, and one space.
 */
export interface BenchWorld {
  ctx: AppContext
  url: string
  web: DidWebHost
  authority: WebIdentity
  space: string
  close(): Promise<void>
}

export async function benchWorld(opts: {
  env?: Record<string, string>
  policy: SpacePolicy
  skey: string
}): Promise<BenchWorld> {
  const teardowns: (() => unknown)[] = []
  const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-'))
  teardowns.push(() => rmSync(dataDir, { recursive: true, force: true }))
  const close = async () => {
    for (const fn of teardowns.reverse()) await fn()
  }
  try {
    const web = await DidWebHost.start({ teardown: (fn) => void teardowns.push(fn) })
    const { config, secrets } = loadConfig({
      GATEHOUSE_ENV: 'production',
      GATEHOUSE_DATA_DIR: dataDir,
      GATEHOUSE_RATE_LIMIT_PER_MINUTE: '0',
      GATEHOUSE_ALLOW_PRIVATE_NETWORK: 'true',
      ...opts.env,
    })
    const ctx = await createContext(config, secrets, {
      overrides: { logger: createLogger({ level: 'warn' }) },
    })
    teardowns.push(() => ctx.destroy())
    const app = await buildServer(ctx)
    const url = await app.listen({ host: '127.0.0.1', port: 0 })
    teardowns.push(() => app.close())
    const authority = web.create('authority')
    await ctx.authorities.register(authority.did, { atproto: authority.key })
    const space = (
      await ctx.spaces.create({
        authority: authority.did,
        spaceType: 'com.example.forum',
        skey: opts.skey,
        ...opts.policy,
      })
    ).uri
    return { ctx, url, web, authority, space, close }
  } catch (err) {
    await close()
    throw err
  }
}

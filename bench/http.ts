import { createServer } from 'node:http'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../src/config.js'
import { createContext } from '../src/context.js'
import { createLogger } from '../src/logger.js'
import { buildServer } from '../src/server.js'
import { httpLoad, percentile, type Bench } from './_lib.js'

/**
 * The XRPC stack's own overhead: GET describeServer through Gatehouse (router, hooks, error
 * handling, output validation off as in production) against a bare node:http server answering the
 * same JSON on the same loopback, both with 16 concurrent keep-alive clients.
 */
const bench: Bench = {
  name: 'http',
  async run({ seconds }) {
    const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-'))
    const { config, secrets } = loadConfig({
      GATEHOUSE_VALIDATE_OUTPUT: 'false',
      GATEHOUSE_DATA_DIR: dataDir,
      GATEHOUSE_RATE_LIMIT_PER_MINUTE: '0',
    })
    const ctx = await createContext(config, secrets, {
      overrides: { logger: createLogger({ level: 'warn' }) },
    })
    const app = await buildServer(ctx)
    const gatehouseUrl = await app.listen({ host: '127.0.0.1', port: 0 })

    const payload = JSON.stringify({ did: ctx.identity.did, version: config.service.version })
    const raw = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(payload)
    })
    await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r))
    const rawPort = (raw.address() as { port: number }).port

    try {
      const base = await httpLoad({ url: `http://127.0.0.1:${rawPort}/`, concurrency: 16, seconds })
      const gh = await httpLoad({
        url: `${gatehouseUrl}/xrpc/dev.gatehouse.server.describeServer`,
        concurrency: 16,
        seconds,
      })
      return {
        bench: 'http',
        figures: [
          { name: 'baseline node:http req/s', value: base.perSecond, unit: 'req/s' },
          { name: 'gatehouse describeServer req/s', value: gh.perSecond, unit: 'req/s' },
          { name: 'gatehouse p50', value: percentile(gh.latenciesMs, 50), unit: 'ms' },
          { name: 'gatehouse p99', value: percentile(gh.latenciesMs, 99), unit: 'ms' },
          { name: 'errors', value: gh.errors + base.errors, unit: '' },
        ],
        ratios: { 'gatehouse / raw node:http': gh.perSecond / base.perSecond },
      }
    } finally {
      await app.close()
      await ctx.destroy()
      await new Promise((r) => raw.close(r))
      rmSync(dataDir, { recursive: true, force: true })
    }
  },
}
export default bench

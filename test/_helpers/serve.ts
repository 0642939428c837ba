import { NO_IDENTITY_LIMITS, type TestLike } from './arbiter.js'
import { freePort, runGatehouse, type RunningProcess } from './process.js'

/**
 * The environment of a `gatehouse serve` child on the given data dir and database: loopback peers
 * allowed (tests run every peer there), no PLC directory, every rate limit off. `extra` is spread last.
 */
export function serveEnv(
  dataDir: string,
  databaseUrl: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    GATEHOUSE_DATA_DIR: dataDir,
    GATEHOUSE_DATABASE_URL: databaseUrl,
    GATEHOUSE_ALLOW_PRIVATE_NETWORK: 'true',
    // Nothing may reach a public PLC directory.
    GATEHOUSE_PLC_URL: 'http://127.0.0.1:9',
    GATEHOUSE_RATE_LIMIT_PER_MINUTE: '0',
    ...NO_IDENTITY_LIMITS,
    ...extra,
  }
}

/**
 * Starts `gatehouse serve` with exactly `env` on a free loopback port and waits until it serves;
 * SIGKILLed when the test ends if still running.
 */
export async function startServe(
  t: TestLike,
  env: Record<string, string>,
): Promise<{ proc: RunningProcess; port: number; url: string }> {
  const port = await freePort()
  const proc = runGatehouse(['serve'], { ...env, GATEHOUSE_PORT: String(port) })
  t.teardown(() => proc.child.kill('SIGKILL'))
  await proc.waitFor(/gatehouse is serving/, 60_000)
  return { proc, port, url: `http://127.0.0.1:${port}` }
}

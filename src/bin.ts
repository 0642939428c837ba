#!/usr/bin/env node
import { pino } from 'pino'
import { ConfigError, loadConfig, type Config } from './config.js'
import { CLI_GROUPS, CLI_USAGE, CliUsageError, runCli } from './cli.js'
import { createContext } from './context.js'
import { migrate } from './db/migrate.js'
import { createLogger, subsystem } from './logger.js'
import type { FastifyInstance } from 'fastify'
import { listenMetrics } from './health.js'
import { buildServer } from './server.js'
import { explainStartupError, type StartupPhase } from './startup-errors.js'
import { VERSION } from './version.js'

/** The command line, and the only reader of process.env. */

/** Signals this close after the first are the same request (see shutdown). */
const SAME_SIGNAL_WINDOW_MS = 1000

const USAGE = `usage: gatehouse [serve|migrate|version]\n${CLI_USAGE}`

function fail(message: string, code = 1): never {
  process.stderr.write(`gatehouse: ${message}\n`)
  process.exit(code)
}

/** Rethrows a failure to start as the ConfigError of the setting that explains it, if one does. */
const failToStart = (config: Config, phase: StartupPhase) => (err: unknown) => {
  throw explainStartupError(err, config, phase) ?? err
}

async function main(argv: string[]): Promise<void> {
  const command = argv[0] ?? 'serve'
  if (command === 'version' || command === '--version') {
    process.stdout.write(`${VERSION}\n`)
    return
  }
  if (command === 'help' || command === '--help') {
    process.stdout.write(`${USAGE}\n`)
    return
  }
  const operator = CLI_GROUPS.includes(command)
  if (command !== 'serve' && command !== 'migrate' && !operator) fail(USAGE, 2)

  const { config, secrets } = loadConfig(process.env, VERSION)

  if (operator) {
    // Results go to stdout and log lines to stderr, so `gatehouse authority list | jq` works.
    const logger = createLogger({
      level: config.log.level,
      destination: pino.destination({ dest: 2, sync: true }),
    })
    try {
      await runCli(argv, config, secrets, (line) => process.stdout.write(`${line}\n`), logger)
    } catch (err) {
      if (err instanceof CliUsageError) fail(err.message, 2)
      failToStart(config, 'open')(err)
    } finally {
      logger.flush()
    }
    return
  }

  if (command === 'migrate') {
    const applied = await migrate(config.db.kind, config.db.url).catch(failToStart(config, 'open'))
    process.stdout.write(
      applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n',
    )
    return
  }

  const ctx = await createContext(config, secrets).catch(failToStart(config, 'open'))
  const app = await buildServer(ctx)
  let metricsApp: FastifyInstance | undefined
  let closingSince = 0
  const shutdown = (signal: string) => {
    if (closingSince) {
      // A terminal's Ctrl-C reaches us directly and again through npm: one request.
      if (Date.now() - closingSince < SAME_SIGNAL_WINDOW_MS) return
      ctx.logger.warn({ signal }, 'second signal: exiting now')
      process.exit(1)
    }
    closingSince = Date.now()
    ctx.logger.info({ signal }, 'shutting down: no new connections, draining work')
    const timer = setTimeout(() => {
      ctx.logger.error('shutdown timed out; exiting')
      process.exit(1)
    }, config.service.shutdownTimeoutMs)
    timer.unref()
    void (async () => {
      try {
        await metricsApp?.close()
        await app.close()
        await ctx.destroy()
        ctx.logger.info('shut down cleanly')
        ctx.logger.flush()
        process.exit(0)
      } catch (err) {
        ctx.logger.error({ err }, 'error during shutdown')
        process.exit(1)
      }
    })()
  }
  process.on('SIGINT', () => shutdown('SIGINT'))
  process.on('SIGTERM', () => shutdown('SIGTERM'))

  await app
    .listen({ host: config.service.host, port: config.service.port })
    .catch(failToStart(config, 'listen'))
  if (config.metrics.port)
    metricsApp = await listenMetrics(ctx).catch(failToStart(config, 'metrics'))
  ctx.relay.start()
  await ctx.db.checkpointInBackground((err) =>
    subsystem(ctx.logger, 'db').warn(
      { err },
      'checkpointer thread failed; SQLite checkpoints inline',
    ),
  )
  ctx.logger.info(
    {
      url: config.service.publicUrl,
      did: ctx.identity.did,
      db: config.db.kind,
      version: VERSION,
    },
    'gatehouse is serving',
  )
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof ConfigError) fail(`invalid configuration: ${err.message}`)
  const e = err as { message?: unknown; code?: unknown } | undefined
  // An AggregateError (refused on every address) has an empty message but a code.
  const message = (typeof e?.message === 'string' && e.message) || String(e?.code ?? err)
  fail(message.split('\n')[0] || 'failed to start')
})

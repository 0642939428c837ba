import { relative, resolve, isAbsolute } from 'node:path'
import { ConfigError, type Config } from './config.js'

/** Names the setting behind a failure to start, e.g. `GATEHOUSE_PORT: … in use (EADDRINUSE)`. */
export type StartupPhase = 'open' | 'listen' | 'metrics'

type SystemError = Error & { code?: string; syscall?: string; path?: string; errors?: unknown[] }

/** PostgreSQL connection failures, and server answers refusing the connection. */
const DB_UNREACHABLE = new Set([
  ...['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH'],
  'ENETUNREACH',
  // invalid_authorization_specification, invalid_password, no such database, cannot_connect_now
  ...['28000', '28P01', '3D000', '57P03'],
])

export function explainStartupError(
  err: unknown,
  config: Config,
  phase: StartupPhase,
): ConfigError | undefined {
  const e = err as SystemError | undefined
  if (!e || typeof e !== 'object') return undefined
  // An AggregateError from Node's happy-eyeballs connect: one error per address tried.
  const code = e.code ?? (e.errors?.[0] as SystemError | undefined)?.code
  if (phase === 'listen' || phase === 'metrics') {
    const [hostVar, portVar, { host, port }] =
      phase === 'listen'
        ? ['GATEHOUSE_HOST', 'GATEHOUSE_PORT', config.service]
        : ['GATEHOUSE_METRICS_HOST', 'GATEHOUSE_METRICS_PORT', config.metrics]
    if (code === 'EADDRINUSE')
      return new ConfigError(portVar, `${host}:${port} is already in use (EADDRINUSE)`)
    if (code === 'EACCES')
      return new ConfigError(portVar, `not permitted to listen on port ${port} (EACCES)`)
    if (code) return new ConfigError(hostVar, `cannot listen on ${host} (${code})`)
    return undefined
  }

  if (typeof e.path === 'string' && code && e.syscall) {
    const variable = variableForPath(e.path, config)
    if (variable) {
      return new ConfigError(variable, `cannot ${e.syscall} ${e.path}: ${reason(e)} (${code})`)
    }
  }
  if (config.db.kind === 'sqlite' && code?.startsWith('SQLITE_')) {
    const path = config.db.url.replace(/^file:/, '')
    return new ConfigError(sqliteVariable(config), `${e.message} at ${resolve(path)} (${code})`)
  }
  if (config.db.kind === 'postgres') {
    const timedOut = /timeout/i.test(e.message) && !code
    if ((code && DB_UNREACHABLE.has(code)) || timedOut) {
      const detail = e.message ? `${e.message.split('\n', 1)[0]} ` : ''
      return new ConfigError(
        'GATEHOUSE_DATABASE_URL',
        `cannot reach the database at ${describeDbUrl(config.db.url)}: ${detail}(${code ?? 'timeout'})`,
      )
    }
  }
  return undefined
}

/** The variable behind a path Gatehouse failed to create or open. */
function variableForPath(path: string, config: Config): string | undefined {
  const dataDir = config.service.dataDir
  if (isWithin(path, dataDir) || isWithin(dataDir, path)) return 'GATEHOUSE_DATA_DIR'
  const db = resolve(config.db.url.replace(/^file:/, ''))
  if (config.db.kind === 'sqlite' && (isWithin(db, path) || path.startsWith(db)))
    return 'GATEHOUSE_DATABASE_URL'
  return undefined
}

/** The SQLite file comes from GATEHOUSE_DATABASE_URL when that names one outside the data dir. */
function sqliteVariable(config: Config): string {
  const db = resolve(config.db.url.replace(/^file:/, ''))
  return isWithin(db, config.service.dataDir) ? 'GATEHOUSE_DATA_DIR' : 'GATEHOUSE_DATABASE_URL'
}

/** Whether `path` is `dir` or inside it. */
function isWithin(path: string, dir: string): boolean {
  const rel = relative(resolve(dir), resolve(path))
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))
}

/** "no such file or directory" out of Node's "ENOENT: no such file or directory, mkdir '/x'". */
function reason(e: SystemError): string {
  return /^[A-Z0-9]+: ([^,]+),/.exec(e.message)?.[1] ?? e.message
}

/** host:port/database of a PostgreSQL URL, without the user or password. */
function describeDbUrl(url: string): string {
  if (!URL.canParse(url)) return 'the configured URL'
  const u = new URL(url)
  return `${u.hostname}:${u.port || '5432'}${u.pathname}`
}

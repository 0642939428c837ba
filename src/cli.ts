import { parseArgs } from 'node:util'
import type { Config, Secrets } from './config.js'
import { createContext } from './context.js'
import type { Logger } from './logger.js'
import { AuthorityLifecycleError } from './authorities/lifecycle.js'
import { AuthorityExportError } from './authorities/export.js'
import { SealedFileError } from './authorities/sealed-file.js'
import { RoleChangeError } from './authorities/managers.js'
import { TokenError } from './managers/tokens.js'
import { COMMANDS, CliUsageError, OPTIONS, type Options } from './cli/commands.js'
import { devApp, DEV_USAGE } from './dev/app.js'
import { XrpcError } from './errors.js'
import { BackupError, backupSqlite } from './db/backup.js'
import { generateKek, KeyVault, loadKeyring, writeKeyFile, type Kek } from './keys/vault.js'
import { PolicyCodecError } from './policy/codec.js'
import { PresetError } from './policy/registry.js'
import { SpaceError } from './spaces/space-service.js'

export { CliUsageError }

/** The first words of operator commands. */
export const CLI_GROUPS = [...Object.keys(COMMANDS), 'kek', 'backup', 'dev']

export const CLI_USAGE = `usage:
${Object.entries(COMMANDS)
  .flatMap(([group, verbs]) =>
    Object.entries(verbs).map(([verb, c]) => `  gatehouse ${group} ${verb} ${c.usage}`.trimEnd()),
  )
  .join('\n')}
  gatehouse kek rotate     (key file: new KEK, every key re-sealed, old KEK dropped)
  gatehouse kek rewrap     (GATEHOUSE_KEK=new, GATEHOUSE_KEK_RETIRED=old: re-seal every key)
  gatehouse backup --out FILE   (an online copy of the SQLite database; not the KEK)
  ${DEV_USAGE}`

/** The one-line error of a refusal by a service: its contract name and message. */
function refusal(err: unknown): string | undefined {
  if (err instanceof AuthorityLifecycleError || err instanceof SealedFileError)
    return `${err.code}: ${err.message}`
  if (err instanceof AuthorityExportError) return `ExportInvalid: ${err.message}`
  if (err instanceof XrpcError || err instanceof SpaceError || err instanceof PolicyCodecError)
    return `${err.error}: ${err.message}`
  if (err instanceof PresetError || err instanceof RoleChangeError || err instanceof TokenError)
    return err.message
  return undefined
}

/** One operator command: JSON result to `out`, logs to `logger` (stderr), so stdout pipes. */
export async function runCli(
  argv: string[],
  config: Config,
  secrets: Secrets,
  out: (line: string) => void,
  logger?: Logger,
): Promise<void> {
  let parsed
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true })
  } catch (err) {
    throw new CliUsageError((err as Error).message)
  }
  const o = parsed.values as Options
  const [group, verb, ...args] = parsed.positionals
  if (group === 'kek') return kek(verb, config, secrets, out, logger)
  if (group === 'dev' && verb === 'app') return devApp(config, args, o, out)
  if (group === 'backup') return backup(verb, config, o, out)
  const command = COMMANDS[group ?? '']?.[verb ?? '']
  if (!command) throw new CliUsageError(CLI_USAGE)
  const needs = command.usage
    .match(/^(?:[A-Z]+(?: |$))*/)![0]
    .split(' ')
    .filter(Boolean)
  if (args.length < needs.length)
    throw new CliUsageError(`${group} ${verb} needs ${needs.join(' ')}`)
  const ctx = await createContext(config, secrets, { overrides: logger ? { logger } : {} })
  try {
    const result = await command.run(ctx, args, o, out, secrets)
    if (result !== undefined) out(JSON.stringify(result, null, 2))
  } catch (err) {
    const line = refusal(err)
    throw line ? new CliUsageError(line) : err
  } finally {
    await ctx.destroy()
  }
}

/** `gatehouse backup --out FILE`: no context needed, so no migration or key is touched. */
async function backup(
  extra: string | undefined,
  config: Config,
  o: Options,
  out: (line: string) => void,
) {
  if (extra !== undefined || !o.out) throw new CliUsageError('usage: gatehouse backup --out FILE')
  try {
    out(JSON.stringify(await backupSqlite(config.db, o.out), null, 2))
  } catch (err) {
    throw err instanceof BackupError ? new CliUsageError(err.message) : err
  }
}

/** KEK rotation; a key file is replaced only after every key is re-sealed in one transaction. */
async function kek(
  verb: string | undefined,
  config: Config,
  secrets: Secrets,
  out: (line: string) => void,
  logger?: Logger,
): Promise<void> {
  const ring = loadKeyring(config.service.dataDir, secrets.kekHex, secrets.retiredKekHex)
  let vault: KeyVault
  let next: Kek | undefined
  if (verb === 'rotate') {
    if (ring.source.kind !== 'file')
      throw new CliUsageError(
        'GATEHOUSE_KEK is set: put the new KEK in GATEHOUSE_KEK and the old one in GATEHOUSE_KEK_RETIRED, then run `gatehouse kek rewrap`',
      )
    next = generateKek()
    writeKeyFile(ring.source.path, [next, ring.current, ...ring.retired])
    vault = new KeyVault(next, [ring.current, ...ring.retired])
  } else if (verb === 'rewrap') {
    vault = new KeyVault(ring.current, ring.retired)
  } else {
    throw new CliUsageError(CLI_USAGE)
  }
  const ctx = await createContext(config, secrets, {
    overrides: logger ? { vault, logger } : { vault },
  })
  let count: number
  try {
    count = await ctx.authorities.rewrapAll()
  } finally {
    await ctx.destroy()
  }
  // Every key opens under the new KEK now: the old ones can go.
  if (next && ring.source.kind === 'file') writeKeyFile(ring.source.path, [next])
  out(JSON.stringify({ rewrapped: count, kekId: vault.kekId }))
}

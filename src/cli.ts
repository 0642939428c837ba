import { parseArgs } from 'node:util'
import type { Config, Secrets } from './config.js'
import { createContext, type AppContext } from './context.js'
import type { Logger } from './logger.js'
import type { AuthorityView } from './authorities/lifecycle.js'
import { AuthorityLifecycleError } from './authorities/lifecycle.js'
import { generateKek, KeyVault, loadKeyring, writeKeyFile, type Kek } from './keys/vault.js'

/**
 * Operator commands that act on the database directly (no HTTP, no service auth): the authority
 * lifecycle and KEK rotation. Output is JSON on stdout; never a private key.
 */

export const CLI_USAGE = `usage:
  gatehouse authority create --plc [--handle H] [--owner-rotation-key DIDKEY] [--owner DID] [--separate-space-key] [--pds-service on|off]
  gatehouse authority create --web DID [--handle H] [--owner DID] [--separate-space-key] [--pds-service on|off]
  gatehouse authority adopt DID [--signing atproto|atproto_space] [--owner DID] [--pds-service on|off]
  gatehouse authority set DID --pds-service on|off
  gatehouse authority activate|deactivate|show DID
  gatehouse authority rotate-key DID [--purpose atproto|atproto_space]
  gatehouse authority rotate-rotation-keys DID [--owner-rotation-key DIDKEY | --remove-owner-rotation-key]
  gatehouse authority transfer DID [--rotation-key DIDKEY ...] [--endpoint URL]
  gatehouse authority list
  gatehouse kek rotate     (key file: new KEK, every key re-sealed, old KEK dropped)
  gatehouse kek rewrap     (GATEHOUSE_KEK=new, GATEHOUSE_KEK_RETIRED=old: re-seal every key)`

export class CliUsageError extends Error {
  override name = 'CliUsageError'
}

const OPTIONS = {
  plc: { type: 'boolean' },
  web: { type: 'string' },
  handle: { type: 'string' },
  owner: { type: 'string' },
  'owner-rotation-key': { type: 'string' },
  'remove-owner-rotation-key': { type: 'boolean' },
  'separate-space-key': { type: 'boolean' },
  signing: { type: 'string' },
  purpose: { type: 'string' },
  'rotation-key': { type: 'string', multiple: true },
  endpoint: { type: 'string' },
  'pds-service': { type: 'string' },
} as const

/** `--pds-service on|off`: undefined when not given. */
function onOff(value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined
  if (value === 'on' || value === 'off') return value === 'on'
  throw new CliUsageError('--pds-service is on or off')
}

/**
 * Runs one operator command. `out` receives the result (JSON), and nothing else: log lines go to
 * `logger`, which bin.ts points at stderr so that stdout stays a clean pipe.
 */
export async function runCli(
  argv: string[],
  config: Config,
  secrets: Secrets,
  out: (line: string) => void,
  logger?: Logger,
): Promise<void> {
  const { values: o, positionals } = parseArgs({
    args: argv,
    options: OPTIONS,
    allowPositionals: true,
  })
  const [group, verb, target] = positionals
  if (group === 'kek') return kek(verb, config, secrets, out, logger)
  if (group !== 'authority' || !verb) throw new CliUsageError(CLI_USAGE)
  const ctx = await createContext(config, secrets, { overrides: logger ? { logger } : {} })
  try {
    const lc = ctx.lifecycle
    const need = () => {
      if (!target) throw new CliUsageError(`authority ${verb} needs a DID`)
      return target
    }
    const print = (v: unknown) => out(JSON.stringify(v, null, 2))
    const pdsService = onOff(o['pds-service'])
    const view = (v: AuthorityView) => print(v)
    switch (verb) {
      case 'create':
        if (!!o.plc === !!o.web)
          throw new CliUsageError('authority create needs --plc or --web DID')
        return view(
          o.plc
            ? await lc.createPlc({
                handle: o.handle,
                owner: o.owner,
                ownerRotationKey: o['owner-rotation-key'],
                separateSpaceKey: o['separate-space-key'],
                pdsService,
              })
            : await lc.createWeb({
                did: o.web!,
                handle: o.handle,
                owner: o.owner,
                separateSpaceKey: o['separate-space-key'],
                pdsService,
              }),
        )
      case 'adopt': {
        const signing = o.signing ?? 'atproto'
        if (signing !== 'atproto' && signing !== 'atproto_space')
          throw new CliUsageError('--signing is atproto or atproto_space')
        return print(await lc.adopt({ did: need(), signing, owner: o.owner, pdsService }))
      }
      case 'set':
        if (pdsService === undefined)
          throw new CliUsageError('authority set needs --pds-service on|off')
        return view(await lc.setPdsService(need(), pdsService))
      case 'activate':
        return view(await lc.activate(need()))
      case 'deactivate':
        return view(await lc.deactivate(need()))
      case 'show':
        return view(await lc.describe(need()))
      case 'list':
        return print(await ctx.authorities.list())
      case 'rotate-key': {
        const purpose = o.purpose ?? 'atproto'
        if (purpose !== 'atproto' && purpose !== 'atproto_space')
          throw new CliUsageError('--purpose is atproto or atproto_space')
        return view(await lc.rotateSigningKey(need(), purpose))
      }
      case 'rotate-rotation-keys':
        return view(
          await lc.rotateRotationKeys(need(), {
            ownerRotationKey: o['remove-owner-rotation-key'] ? null : o['owner-rotation-key'],
          }),
        )
      case 'transfer':
        return view(
          await lc.transfer(need(), {
            rotationKeys: o['rotation-key'],
            services: o.endpoint
              ? { atproto_space_host: { type: 'AtprotoSpaceHost', endpoint: o.endpoint } }
              : undefined,
          }),
        )
      default:
        throw new CliUsageError(CLI_USAGE)
    }
  } catch (err) {
    if (err instanceof AuthorityLifecycleError)
      throw new CliUsageError(`${err.code}: ${err.message}`)
    throw err
  } finally {
    await ctx.destroy()
  }
}

/**
 * KEK rotation. With the key file: a new KEK is written first beside the old one (both in the
 * file, new first), every key is re-sealed in one transaction, then the old KEK is dropped from the
 * file; a crash in between leaves a file that still opens everything. With GATEHOUSE_KEK the
 * operator supplies both (GATEHOUSE_KEK new, GATEHOUSE_KEK_RETIRED old) and runs `kek rewrap`.
 */
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
    vault = KeyVault.fromKeyring(ring)
  } else {
    throw new CliUsageError(CLI_USAGE)
  }
  const ctx: AppContext = await createContext(config, secrets, {
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

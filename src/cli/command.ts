import type { parseArgs } from 'node:util'
import type { Secrets } from '../config.js'
import type { AppContext } from '../context.js'

/** What every operator command shares: its options, its shape, its usage error. */

export class CliUsageError extends Error {
  override name = 'CliUsageError'
}

export const OPTIONS = {
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
  preset: { type: 'string' },
  skey: { type: 'string' },
  'managing-app': { type: 'string' },
  client: { type: 'string', multiple: true },
  read: { type: 'string' },
  write: { type: 'string' },
  role: { type: 'string' },
  port: { type: 'string' },
  server: { type: 'string' },
  invite: { type: 'string' },
  join: { type: 'string' },
  manager: { type: 'string' },
  name: { type: 'string' },
  space: { type: 'string' },
  expires: { type: 'string' },
  'max-uses': { type: 'string' },
  reason: { type: 'string' },
  status: { type: 'string' },
  actor: { type: 'string' },
  action: { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
  limit: { type: 'string' },
  out: { type: 'string' },
  'passphrase-file': { type: 'string' },
} as const

export type Options = ReturnType<
  typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>
>['values']

/** A command: its arguments (upper-case words are required positionals) and what it does. */
export interface Command {
  usage: string
  run(
    ctx: AppContext,
    args: string[],
    o: Options,
    out: (line: string) => void,
    secrets: Secrets,
  ): Promise<unknown>
}

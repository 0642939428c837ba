import { closeSync, existsSync, openSync, readSync, writeFileSync } from 'node:fs'
import { OPERATOR } from '../audit/audit-log.js'
import { MAX_EXPORT_FILE_BYTES } from '../authorities/export.js'
import type { Secrets } from '../config.js'
import { CliUsageError, type Command, type Options } from './command.js'

/** A passphrase file or stdin is read up to this; a passphrase is far shorter. */
const MAX_PASSPHRASE_BYTES = 4096

/**
 * At most `max` bytes of `path` (or fd 0): a larger file is refused, not read whole. The size is
 * what is read, not what stat says, so a file growing meanwhile (or a pipe) is bounded too.
 */
function readBounded(path: string | 0, max: number, what: string): Buffer {
  let fd: number
  try {
    fd = path === 0 ? 0 : openSync(path, 'r')
  } catch (err) {
    throw new CliUsageError(`cannot read ${what} ${String(path)}: ${(err as Error).message}`)
  }
  try {
    const chunks: Buffer[] = []
    let total = 0
    for (;;) {
      const chunk = Buffer.alloc(Math.min(1 << 20, max + 1 - total))
      let n: number
      try {
        n = readSync(fd, chunk)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') continue
        if ((err as NodeJS.ErrnoException).code === 'EOF') break
        throw err
      }
      if (n === 0) break
      chunks.push(chunk.subarray(0, n))
      total += n
      if (total > max) throw new CliUsageError(`${what} is larger than ${max} bytes`)
    }
    return Buffer.concat(chunks)
  } finally {
    if (path !== 0) closeSync(fd)
  }
}

/**
 * The passphrase, never from argv (other users see it in the process list): `--passphrase-file`,
 * else GATEHOUSE_EXPORT_PASSPHRASE, else stdin when it is not a terminal. One final newline is
 * dropped, as `echo` and editors add it.
 */
function passphraseOf(o: Options, secrets: Secrets): string {
  const file = o['passphrase-file']
  const text =
    file !== undefined
      ? readBounded(file, MAX_PASSPHRASE_BYTES, 'the passphrase file').toString('utf8')
      : (secrets.exportPassphrase ??
        (process.stdin.isTTY
          ? ''
          : readBounded(0, MAX_PASSPHRASE_BYTES, 'the passphrase on stdin').toString('utf8')))
  const passphrase = text.replace(/\r?\n$/, '')
  if (passphrase === '')
    throw new CliUsageError(
      'no passphrase: give --passphrase-file FILE, GATEHOUSE_EXPORT_PASSPHRASE, or pipe it to stdin',
    )
  return passphrase
}

/** `authority export` and `authority import` (docs/operating.md, "Moving an authority"). */
export const EXPORT_COMMANDS: Record<'export' | 'import', Command> = {
  export: {
    usage: 'DID --out FILE [--passphrase-file F]',
    async run(ctx, [did], o, _out, secrets) {
      if (!o.out) throw new CliUsageError('authority export needs --out FILE')
      if (existsSync(o.out)) throw new CliUsageError(`${o.out} exists: name a new file`)
      const passphrase = passphraseOf(o, secrets)
      const { file, counts } = await ctx.authorityExport.export(did!, passphrase, OPERATOR)
      // Readable by this user only: it holds the authority's keys, sealed.
      writeFileSync(o.out, file, { mode: 0o600, flag: 'wx' })
      return { did, out: o.out, bytes: file.length, counts }
    },
  },
  import: {
    usage: 'FILE [--passphrase-file F]',
    async run(ctx, [path], o, _out, secrets) {
      const passphrase = passphraseOf(o, secrets)
      const file = readBounded(path!, MAX_EXPORT_FILE_BYTES, 'the export')
      const { did, counts } = await ctx.authorityExport.import(file, passphrase, OPERATOR)
      return { ...(await ctx.lifecycle.describe(did)), counts }
    },
  },
}

import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  randomBytes,
  scryptSync,
  timingSafeEqual,
} from 'node:crypto'
import { deflateRawSync, inflateRawSync } from 'node:zlib'
import { z } from 'zod'

/**
 * The sealed file of `gatehouse authority export` (docs/operating.md gives the layout):
 *
 *   MAGIC (8 bytes) ‖ header length (uint32 BE) ‖ header (UTF-8 JSON) ‖ ciphertext ‖ GCM tag (16)
 *
 * The payload is deflated, then sealed with AES-256-GCM under a key scrypt derives from a
 * passphrase. Everything before the ciphertext is the additional data, so the version and KDF
 * parameters cannot be changed without the tag failing. The header's `check` (an HMAC of a fixed
 * text under a second derived key) tells a wrong passphrase from an altered file.
 */

export const MAGIC = Buffer.from('GHAUTHX\n', 'latin1')
export const FORMAT_VERSION = 1
export const MIN_PASSPHRASE_CHARS = 12
/** What this Gatehouse writes: about 128 MiB and a few hundred ms of scrypt. */
export const KDF_DEFAULTS = { N: 2 ** 17, r: 8, p: 1 }
/** A file's header is refused past this, before any work. */
const MAX_HEADER_BYTES = 1024
/**
 * scrypt needs 128·N·r bytes; a file asking for more is refused rather than obeyed, and p is
 * bounded, so a stranger's file costs at most a few times our own export's derivation.
 */
const MAX_KDF_MEMORY_BYTES = 256 * 1024 * 1024
const TAG_BYTES = 16
const CHECK_TEXT = 'gatehouse-authority-export-passphrase-check'

export class SealedFileError extends Error {
  override name = 'SealedFileError'
  constructor(
    readonly code: 'NotAnExport' | 'UnsupportedExport' | 'WrongPassphrase' | 'ExportDamaged',
    message: string,
  ) {
    super(message)
  }
}

const b64 = (bytes: number) =>
  z
    .string()
    .regex(/^[A-Za-z0-9+/]+=*$/)
    .transform((s) => Buffer.from(s, 'base64'))
    .refine((b) => b.length === bytes, `must be ${bytes} bytes`)

const HEADER = z
  .object({
    version: z.number().int(),
    kdf: z
      .object({
        name: z.literal('scrypt'),
        // A power of two from 2^14 to 2^18.
        N: z
          .number()
          .int()
          .min(2 ** 14)
          .max(2 ** 18)
          .refine((n) => (n & (n - 1)) === 0, 'a power of two'),
        r: z.number().int().min(1).max(16),
        p: z.number().int().min(1).max(4),
        salt: b64(16),
      })
      .strict()
      .refine((k) => 128 * k.N * k.r <= MAX_KDF_MEMORY_BYTES, 'scrypt memory beyond the bound'),
    cipher: z.literal('aes-256-gcm'),
    nonce: b64(12),
    check: b64(32),
  })
  .strict()

type Kdf = { N: number; r: number; p: number; salt: Buffer }

/** Refuses passphrases too short to stand against guessing when the file is copied away. */
export function assertPassphrase(passphrase: string): void {
  if ([...passphrase].length < MIN_PASSPHRASE_CHARS)
    throw new SealedFileError(
      'WrongPassphrase',
      `the passphrase must be at least ${MIN_PASSPHRASE_CHARS} characters`,
    )
}

function derive(passphrase: string, kdf: Kdf): { key: Buffer; check: Buffer } {
  const out = scryptSync(passphrase.normalize('NFC'), kdf.salt, 64, {
    N: kdf.N,
    r: kdf.r,
    p: kdf.p,
    maxmem: MAX_KDF_MEMORY_BYTES + 1024 * 1024,
  })
  const check = createHmac('sha256', out.subarray(32)).update(CHECK_TEXT).digest()
  const key = Buffer.from(out.subarray(0, 32))
  out.fill(0)
  return { key, check }
}

/** Deflates and seals `payload` under `passphrase`. */
export function sealExport(payload: Buffer, passphrase: string, kdf = KDF_DEFAULTS): Buffer {
  assertPassphrase(passphrase)
  const salt = randomBytes(16)
  const nonce = randomBytes(12)
  const { key, check } = derive(passphrase, { ...kdf, salt })
  const header = Buffer.from(
    JSON.stringify({
      version: FORMAT_VERSION,
      kdf: { name: 'scrypt', ...kdf, salt: salt.toString('base64') },
      cipher: 'aes-256-gcm',
      nonce: nonce.toString('base64'),
      check: check.toString('base64'),
    }),
    'utf8',
  )
  const length = Buffer.alloc(4)
  length.writeUInt32BE(header.length)
  const aad = Buffer.concat([MAGIC, length, header])
  const cipher = createCipheriv('aes-256-gcm', key, nonce)
  cipher.setAAD(aad)
  const body = Buffer.concat([cipher.update(deflateRawSync(payload)), cipher.final()])
  key.fill(0)
  return Buffer.concat([aad, body, cipher.getAuthTag()])
}

/**
 * Checks the header (bounds first, so a stranger's file cannot make us burn memory or CPU), derives
 * the key, authenticates the whole file, and only then inflates, at most `maxPayloadBytes`.
 */
export function openExport(file: Buffer, passphrase: string, maxPayloadBytes: number): Buffer {
  assertPassphrase(passphrase)
  if (file.length < MAGIC.length + 4 || !file.subarray(0, MAGIC.length).equals(MAGIC))
    throw new SealedFileError('NotAnExport', 'not a Gatehouse authority export')
  const headerBytes = file.readUInt32BE(MAGIC.length)
  const start = MAGIC.length + 4
  if (headerBytes > MAX_HEADER_BYTES || file.length < start + headerBytes + TAG_BYTES)
    throw new SealedFileError('ExportDamaged', 'the export is truncated (its header is incomplete)')
  let raw: unknown
  try {
    raw = JSON.parse(file.subarray(start, start + headerBytes).toString('utf8'))
  } catch {
    throw new SealedFileError('ExportDamaged', 'the export header is not JSON')
  }
  const version = (raw as { version?: unknown } | null)?.version
  if (version !== FORMAT_VERSION)
    throw new SealedFileError(
      'UnsupportedExport',
      `export format version ${String(version)} is not one this Gatehouse reads (${FORMAT_VERSION})`,
    )
  const parsed = HEADER.safeParse(raw)
  if (!parsed.success)
    throw new SealedFileError(
      'UnsupportedExport',
      `the export header is refused: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    )
  const header = parsed.data
  const { key, check } = derive(passphrase, header.kdf)
  if (!timingSafeEqual(check, header.check)) {
    key.fill(0)
    throw new SealedFileError('WrongPassphrase', 'wrong passphrase for this export')
  }
  const aad = file.subarray(0, start + headerBytes)
  const decipher = createDecipheriv('aes-256-gcm', key, header.nonce)
  decipher.setAAD(aad)
  decipher.setAuthTag(file.subarray(file.length - TAG_BYTES))
  let deflated: Buffer
  try {
    deflated = Buffer.concat([
      decipher.update(file.subarray(aad.length, file.length - TAG_BYTES)),
      decipher.final(),
    ])
  } catch {
    throw new SealedFileError('ExportDamaged', 'the export is truncated or altered')
  } finally {
    key.fill(0)
  }
  try {
    return inflateRawSync(deflated, { maxOutputLength: maxPayloadBytes })
  } catch (err) {
    throw new SealedFileError(
      'ExportDamaged',
      err instanceof RangeError
        ? `the export's payload is larger than ${maxPayloadBytes} bytes`
        : 'the export payload does not inflate',
    )
  }
}

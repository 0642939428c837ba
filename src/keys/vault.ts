import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/**
 * Private keys at rest: AES-256-GCM under a key-encryption key (KEK). The KEK comes from
 * GATEHOUSE_KEK or from `<dataDir>/kek.key`, created on first start with mode 0600. Each sealed
 * secret is bound to its purpose by additional authenticated data, so a ciphertext copied into
 * another row (another authority, another purpose) does not open. Secrets never appear in errors.
 */

export const KEK_FILE = 'kek.key'
const NONCE_BYTES = 12
const TAG_BYTES = 16

export interface Kek {
  /** Short public fingerprint, stored beside every ciphertext it wrapped. */
  id: string
  key: Uint8Array
}

export class VaultError extends Error {
  override name = 'VaultError'
}

export function kekFromBytes(key: Uint8Array): Kek {
  if (key.length !== 32) throw new VaultError('a KEK is 32 bytes')
  return {
    id: createHash('sha256').update(key).digest('hex').slice(0, 16),
    key: Uint8Array.from(key),
  }
}

/** The KEK from its hex value, or from the data dir's key file (created on first use, mode 0600). */
export function loadKek(dataDir: string, kekHex?: string): Kek {
  if (kekHex) return kekFromBytes(Buffer.from(kekHex, 'hex'))
  const path = join(dataDir, KEK_FILE)
  if (existsSync(path)) {
    const hex = readFileSync(path, 'utf8').trim()
    if (!/^[0-9a-f]{64}$/.test(hex)) throw new VaultError(`${path} is not a Gatehouse KEK file`)
    return kekFromBytes(Buffer.from(hex, 'hex'))
  }
  mkdirSync(dataDir, { recursive: true })
  const key = randomBytes(32)
  writeFileSync(path, `${key.toString('hex')}\n`, { mode: 0o600, flag: 'wx' })
  chmodSync(path, 0o600)
  return kekFromBytes(key)
}

export class KeyVault {
  constructor(private readonly kek: Kek) {}

  get kekId(): string {
    return this.kek.id
  }

  seal(secret: Uint8Array, aad: string): Uint8Array {
    const nonce = randomBytes(NONCE_BYTES)
    const cipher = createCipheriv('aes-256-gcm', this.kek.key, nonce)
    cipher.setAAD(Buffer.from(aad, 'utf8'))
    const body = Buffer.concat([cipher.update(secret), cipher.final()])
    return new Uint8Array(Buffer.concat([nonce, body, cipher.getAuthTag()]))
  }

  open(sealed: Uint8Array, aad: string, kekId: string): Uint8Array {
    if (kekId !== this.kek.id)
      throw new VaultError(`sealed under KEK ${kekId}, which is not loaded`)
    if (sealed.length < NONCE_BYTES + TAG_BYTES + 1)
      throw new VaultError('sealed secret is truncated')
    const buf = Buffer.from(sealed)
    const decipher = createDecipheriv('aes-256-gcm', this.kek.key, buf.subarray(0, NONCE_BYTES))
    decipher.setAAD(Buffer.from(aad, 'utf8'))
    decipher.setAuthTag(buf.subarray(buf.length - TAG_BYTES))
    try {
      return new Uint8Array(
        Buffer.concat([
          decipher.update(buf.subarray(NONCE_BYTES, buf.length - TAG_BYTES)),
          decipher.final(),
        ]),
      )
    } catch {
      throw new VaultError('sealed secret does not open (wrong KEK, or tampered)')
    }
  }
}

import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto'
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ensurePrivateDir } from '../files.js'

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

const HEX_KEK = /^[0-9a-f]{64}$/

function kekFromHex(hex: string, source: string): Kek {
  if (!HEX_KEK.test(hex)) throw new VaultError(`${source} is not a 64-digit hex KEK`)
  return kekFromBytes(Buffer.from(hex, 'hex'))
}

/** The KEKs a vault can open with: `current` seals, `retired` ones only open (during a rotation). */
export interface Keyring {
  current: Kek
  retired: Kek[]
  /** Where the ring was read from: the key file, or the environment. */
  source: { kind: 'file'; path: string } | { kind: 'env' }
}

/**
 * The keyring from GATEHOUSE_KEK (and GATEHOUSE_KEK_RETIRED), or from the data dir's key file,
 * created on first use with mode 0600. The file holds one hex KEK per line: the first is current,
 * any others are retired ones a rotation still needs.
 */
export function loadKeyring(dataDir: string, kekHex?: string, retiredHex: string[] = []): Keyring {
  if (kekHex) {
    return {
      current: kekFromHex(kekHex, 'GATEHOUSE_KEK'),
      retired: retiredHex.map((h) => kekFromHex(h, 'GATEHOUSE_KEK_RETIRED')),
      source: { kind: 'env' },
    }
  }
  const path = join(dataDir, KEK_FILE)
  if (existsSync(path)) {
    const lines = readFileSync(path, 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
    if (lines.length === 0) throw new VaultError(`${path} is not a Gatehouse KEK file`)
    const [current, ...retired] = lines.map((l) => kekFromHex(l, path))
    return { current: current!, retired, source: { kind: 'file', path } }
  }
  ensurePrivateDir(dataDir)
  const key = randomBytes(32)
  writeFileSync(path, `${key.toString('hex')}\n`, { mode: 0o600, flag: 'wx' })
  chmodSync(path, 0o600)
  return { current: kekFromBytes(key), retired: [], source: { kind: 'file', path } }
}

/** Replaces the key file (mode 0600) atomically: written beside it, then renamed over it. */
export function writeKeyFile(path: string, keks: Kek[]): void {
  const tmp = `${path}.${process.pid}.tmp`
  writeFileSync(tmp, keks.map((k) => `${Buffer.from(k.key).toString('hex')}\n`).join(''), {
    mode: 0o600,
  })
  chmodSync(tmp, 0o600)
  renameSync(tmp, path)
}

export function generateKek(): Kek {
  return kekFromBytes(randomBytes(32))
}

export class KeyVault {
  private readonly byId = new Map<string, Kek>()

  constructor(
    private readonly current: Kek,
    retired: Kek[] = [],
  ) {
    for (const k of [current, ...retired]) this.byId.set(k.id, k)
  }

  static fromKeyring(ring: Keyring): KeyVault {
    return new KeyVault(ring.current, ring.retired)
  }

  /** The id of the KEK new secrets are sealed under. */
  get kekId(): string {
    return this.current.id
  }

  seal(secret: Uint8Array, aad: string): Uint8Array {
    const nonce = randomBytes(NONCE_BYTES)
    const cipher = createCipheriv('aes-256-gcm', this.current.key, nonce)
    cipher.setAAD(Buffer.from(aad, 'utf8'))
    const body = Buffer.concat([cipher.update(secret), cipher.final()])
    return new Uint8Array(Buffer.concat([nonce, body, cipher.getAuthTag()]))
  }

  open(sealed: Uint8Array, aad: string, kekId: string): Uint8Array {
    const kek = this.byId.get(kekId)
    if (!kek) throw new VaultError(`sealed under KEK ${kekId}, which is not loaded`)
    if (sealed.length < NONCE_BYTES + TAG_BYTES + 1)
      throw new VaultError('sealed secret is truncated')
    const buf = Buffer.from(sealed)
    const decipher = createDecipheriv('aes-256-gcm', kek.key, buf.subarray(0, NONCE_BYTES))
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

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
  if (existsSync(path)) return readKeyFile(path)
  ensurePrivateDir(dataDir)
  const key = randomBytes(32)
  writeFileSync(path, `${key.toString('hex')}\n`, { mode: 0o600, flag: 'wx' })
  chmodSync(path, 0o600)
  return { current: kekFromBytes(key), retired: [], source: { kind: 'file', path } }
}

/** The keyring in an existing key file (never creates one). */
export function readKeyFile(path: string): Keyring {
  const lines = readFileSync(path, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
  if (lines.length === 0) throw new VaultError(`${path} is not a Gatehouse KEK file`)
  const [current, ...retired] = lines.map((l) => kekFromHex(l, path))
  return { current: current!, retired, source: { kind: 'file', path } }
}

/**
 * A vault for `ring`. One read from the key file can learn the KEKs `gatehouse kek rotate` adds
 * while this process runs; KEKs from the environment are fixed for the life of the process.
 */
export function vaultFor(ring: Keyring): KeyVault {
  const source = ring.source
  return KeyVault.fromKeyring(
    ring,
    source.kind === 'file' ? () => readKeyFile(source.path) : undefined,
  )
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

/**
 * Seals and opens secrets. `current` is what this process was started with; which KEK seals a new
 * key is the database's to say (see AuthorityService), since `gatehouse kek` may rotate it while
 * this process runs. A vault read from the key file can read the file again to learn a KEK it has
 * not loaded yet.
 */
export class KeyVault {
  private readonly byId = new Map<string, Kek>()

  constructor(
    private readonly current: Kek,
    retired: Kek[] = [],
    /** Reads the keyring again (the key file may have gained a KEK); undefined when it cannot. */
    private readonly reread?: () => Keyring,
  ) {
    for (const k of [current, ...retired]) this.byId.set(k.id, k)
  }

  static fromKeyring(ring: Keyring, reread?: () => Keyring): KeyVault {
    return new KeyVault(ring.current, ring.retired, reread)
  }

  /** The id of the KEK this process was started with. */
  get kekId(): string {
    return this.current.id
  }

  /** Seals under the process's own KEK (rotation re-seals with this). */
  seal(secret: Uint8Array, aad: string): Uint8Array {
    return this.sealUnder(this.current.id, secret, aad)
  }

  /** Seals under the KEK `kekId`, reading the key file again once if it is not loaded. */
  sealUnder(kekId: string, secret: Uint8Array, aad: string): Uint8Array {
    const kek = this.kek(kekId)
    if (!kek) {
      throw new VaultError(
        `new keys are sealed under KEK ${kekId} (moved by \`gatehouse kek\`), which this process does not hold: restart it with that KEK`,
      )
    }
    const nonce = randomBytes(NONCE_BYTES)
    const cipher = createCipheriv('aes-256-gcm', kek.key, nonce)
    cipher.setAAD(Buffer.from(aad, 'utf8'))
    const body = Buffer.concat([cipher.update(secret), cipher.final()])
    return new Uint8Array(Buffer.concat([nonce, body, cipher.getAuthTag()]))
  }

  open(sealed: Uint8Array, aad: string, kekId: string): Uint8Array {
    const kek = this.kek(kekId)
    if (!kek) {
      throw new VaultError(
        `sealed under KEK ${kekId}, which this process has not loaded: restart it with that KEK (GATEHOUSE_KEK or the key file)`,
      )
    }
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

  /** The KEK `id`, learning it from the key file when a rotation has added it since we read it. */
  private kek(id: string): Kek | undefined {
    const known = this.byId.get(id)
    if (known || !this.reread) return known
    let ring: Keyring
    try {
      ring = this.reread()
    } catch {
      return undefined
    }
    for (const k of [ring.current, ...ring.retired]) this.byId.set(k.id, k)
    return this.byId.get(id)
  }
}

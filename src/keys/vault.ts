import { createCipheriv, createDecipheriv, hash, randomBytes } from 'node:crypto'
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createPrivateFileOnce, ensurePrivateDir } from '../files.js'

/**
 * Private keys at rest: AES-256-GCM under a KEK, with the purpose as additional authenticated data so
 * a ciphertext copied into another row does not open. Secrets never appear in errors.
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
    id: hash('sha256', key, 'hex').slice(0, 16),
    key: Uint8Array.from(key),
  }
}

const HEX_KEK = /^[0-9a-f]{64}$/

function kekFromHex(hex: string, source: string): Kek {
  if (!HEX_KEK.test(hex)) throw new VaultError(`${source} is not a 64-digit hex KEK`)
  return kekFromBytes(Buffer.from(hex, 'hex'))
}

/** `current` seals; `retired` KEKs only open (during a rotation). */
export interface Keyring {
  current: Kek
  retired: Kek[]
  source: { kind: 'file'; path: string } | { kind: 'env' }
}

/**
 * From GATEHOUSE_KEK (and GATEHOUSE_KEK_RETIRED), or else the data dir's key file (mode 0600, created
 * on first use): one hex KEK a line, the current first.
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
  // Another process starting at the same moment may have made it first: then it is theirs.
  if (!createPrivateFileOnce(path, `${key.toString('hex')}\n`)) return readKeyFile(path)
  return { current: kekFromBytes(key), retired: [], source: { kind: 'file', path } }
}

export function readKeyFile(path: string): Keyring {
  const lines = readFileSync(path, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
  if (lines.length === 0) throw new VaultError(`${path} is not a Gatehouse KEK file`)
  const [current, ...retired] = lines.map((l) => kekFromHex(l, path))
  return { current: current!, retired, source: { kind: 'file', path } }
}

/** A vault from the key file rereads it to learn KEKs `gatehouse kek rotate` adds meanwhile. */
export function vaultFor(ring: Keyring): KeyVault {
  const { source } = ring
  const reread = source.kind === 'file' ? () => readKeyFile(source.path) : undefined
  return new KeyVault(ring.current, ring.retired, reread)
}

/** Atomically: written beside the file, then renamed over it. */
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
 * `current` is the KEK this process started with; which KEK seals a new key is the database's to say
 * (AuthorityService), since `gatehouse kek` may rotate it while this process runs.
 */
export class KeyVault {
  private readonly byId = new Map<string, Kek>()

  constructor(
    private readonly current: Kek,
    retired: Kek[] = [],
    private readonly reread?: () => Keyring,
  ) {
    for (const k of [current, ...retired]) this.byId.set(k.id, k)
  }

  get kekId(): string {
    return this.current.id
  }

  /** Seals under the process's own KEK (rotation re-seals with this). */
  seal(secret: Uint8Array, aad: string): Uint8Array {
    return this.sealUnder(this.current.id, secret, aad)
  }

  sealUnder(kekId: string, secret: Uint8Array, aad: string): Uint8Array {
    const kek = this.kek(
      kekId,
      `new keys are sealed under KEK ${kekId} (moved by \`gatehouse kek\`), which this process does not hold: restart it with that KEK`,
    )
    const nonce = randomBytes(NONCE_BYTES)
    const cipher = createCipheriv('aes-256-gcm', kek.key, nonce)
    cipher.setAAD(Buffer.from(aad, 'utf8'))
    const body = Buffer.concat([cipher.update(secret), cipher.final()])
    return new Uint8Array(Buffer.concat([nonce, body, cipher.getAuthTag()]))
  }

  open(sealed: Uint8Array, aad: string, kekId: string): Uint8Array {
    const kek = this.kek(
      kekId,
      `sealed under KEK ${kekId}, which this process has not loaded: restart it with that KEK (GATEHOUSE_KEK or the key file)`,
    )
    if (sealed.length < NONCE_BYTES + TAG_BYTES + 1)
      throw new VaultError('sealed secret is truncated')
    const buf = Buffer.from(sealed)
    const decipher = createDecipheriv('aes-256-gcm', kek.key, buf.subarray(0, NONCE_BYTES))
    decipher.setAAD(Buffer.from(aad, 'utf8'))
    decipher.setAuthTag(buf.subarray(buf.length - TAG_BYTES))
    const body = buf.subarray(NONCE_BYTES, buf.length - TAG_BYTES)
    try {
      return new Uint8Array(Buffer.concat([decipher.update(body), decipher.final()]))
    } catch {
      throw new VaultError('sealed secret does not open (wrong KEK, or tampered)')
    }
  }

  /** The KEK `id`, rereading the key file once if a rotation may have added it; else `missing`. */
  private kek(id: string, missing: string): Kek {
    if (!this.byId.has(id) && this.reread) {
      try {
        const ring = this.reread()
        for (const k of [ring.current, ...ring.retired]) this.byId.set(k.id, k)
      } catch {
        // an unreadable key file leaves the KEK unknown
      }
    }
    const kek = this.byId.get(id)
    if (!kek) throw new VaultError(missing)
    return kek
  }
}

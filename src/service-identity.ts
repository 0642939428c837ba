import { webDidDocument } from './authorities/did-web.js'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createPrivateFileOnce, ensurePrivateDir } from './files.js'
import type { Config, Secrets } from './config.js'
import { Keypair } from './crypto/keypair.js'

/** The file, under the data dir, that keeps the service's own signing key when none is configured. */
export const SERVICE_KEY_FILE = 'service-key.json'

/** Gatehouse's own identity: a did:web of its public URL, one `#atproto` key, `#atproto_space_host`. */
export class ServiceIdentity {
  constructor(
    readonly did: string,
    readonly publicUrl: string,
    readonly signingKey: Keypair,
  ) {}

  /** The did:web document, or undefined when the configured DID is not a did:web of our own host. */
  didDocument(): object | undefined {
    const host = new URL(this.publicUrl).host.replace(':', '%3A')
    if (this.did !== `did:web:${host}`) return undefined
    return webDidDocument({
      did: this.did,
      keys: { atproto: this.signingKey.did() },
      services: { atproto_space_host: { type: 'AtprotoSpaceHost', endpoint: this.publicUrl } },
    })
  }
}

/** GATEHOUSE_SERVICE_KEY, else `<dataDir>/service-key.json`, created once (mode 0600), never rewritten. */
export function loadServiceKey(config: Config, secrets: Secrets): Keypair {
  if (secrets.serviceKeyHex) {
    return Keypair.fromSecretKey('secp256k1', Buffer.from(secrets.serviceKeyHex, 'hex'))
  }
  const dir = config.service.dataDir
  const path = join(dir, SERVICE_KEY_FILE)
  ensurePrivateDir(dir)
  if (!existsSync(path)) {
    const key = Keypair.generate('secp256k1')
    const body = JSON.stringify({
      curve: 'secp256k1',
      privateKeyHex: Buffer.from(key.exportSecretKey()).toString('hex'),
      did: key.did(),
      createdAt: new Date().toISOString(),
    })
    if (createPrivateFileOnce(path, `${body}\n`)) return key
  }
  const stored = JSON.parse(readFileSync(path, 'utf8')) as {
    curve?: string
    privateKeyHex?: string
  }
  if (stored.curve !== 'secp256k1' || !/^[0-9a-f]{64}$/.test(stored.privateKeyHex ?? '')) {
    throw new Error(`${path}: not a Gatehouse service key file`)
  }
  return Keypair.fromSecretKey('secp256k1', Buffer.from(stored.privateKeyHex!, 'hex'))
}

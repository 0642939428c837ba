import { randomBytes } from 'node:crypto'
import { p256 } from '@noble/curves/nist.js'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { formatDidKey, formatMultikey, type Curve } from './did-key.js'

/** JOSE `alg` for each curve's ECDSA-with-SHA-256 signatures. */
export const JWT_ALG: Record<Curve, 'ES256K' | 'ES256'> = { secp256k1: 'ES256K', p256: 'ES256' }

function impl(curve: Curve) {
  return curve === 'secp256k1' ? secp256k1 : p256
}

/**
 * A private key Gatehouse signs with. Signatures are ECDSA over SHA-256(data), compact r‖s, and
 * always low-S: atproto verifiers refuse high-S token signatures. The secret is kept in a private
 * field and never appears in `toJSON` or `inspect` output.
 */
export class Keypair {
  readonly #secret: Uint8Array
  readonly publicKey: Uint8Array

  private constructor(
    readonly curve: Curve,
    secret: Uint8Array,
  ) {
    if (!impl(curve).utils.isValidSecretKey(secret)) throw new Error(`invalid ${curve} private key`)
    this.#secret = Uint8Array.from(secret)
    this.publicKey = impl(curve).getPublicKey(this.#secret, true)
  }

  /** A fresh key from the operating system's CSPRNG. */
  static generate(curve: Curve): Keypair {
    for (;;) {
      const candidate = randomBytes(32)
      if (impl(curve).utils.isValidSecretKey(candidate)) return new Keypair(curve, candidate)
    }
  }

  static fromSecretKey(curve: Curve, secret: Uint8Array): Keypair {
    return new Keypair(curve, secret)
  }

  get alg(): 'ES256K' | 'ES256' {
    return JWT_ALG[this.curve]
  }

  did(): string {
    return formatDidKey(this.curve, this.publicKey)
  }

  multikey(): string {
    return formatMultikey(this.curve, this.publicKey)
  }

  sign(data: Uint8Array): Uint8Array {
    return impl(this.curve).sign(data, this.#secret, {
      prehash: true,
      lowS: true,
      format: 'compact',
    })
  }

  /** The raw 32-byte secret, for encryption at rest. Callers must not log or persist it in clear. */
  exportSecretKey(): Uint8Array {
    return Uint8Array.from(this.#secret)
  }

  toJSON(): object {
    return { curve: this.curve, did: this.did() }
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `Keypair(${this.curve}, ${this.did()})`
  }
}

/**
 * Verifies an ECDSA-SHA-256 compact signature. `allowHighS` is per token kind: atproto tokens we
 * verify demand low-S; service auth and request signatures accept either (wire contract §3).
 */
export function verifySignature(
  curve: Curve,
  publicKey: Uint8Array,
  data: Uint8Array,
  signature: Uint8Array,
  opts: { allowHighS: boolean },
): boolean {
  if (signature.length !== 64) return false
  try {
    return impl(curve).verify(signature, data, publicKey, {
      prehash: true,
      lowS: !opts.allowHighS,
      format: 'compact',
    })
  } catch {
    return false
  }
}

import { randomBytes, verify as nodeVerify, type KeyObject } from 'node:crypto'
import { p256 } from '@noble/curves/nist.js'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { formatDidKey, formatMultikey, type Curve } from './did-key.js'
import { publicKeyObject } from './key-object.js'

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

/** Curve orders, for the low-S rule: s must not exceed n / 2. */
const HALF_ORDER: Record<Curve, bigint> = {
  secp256k1: secp256k1.Point.CURVE().n >> 1n,
  p256: p256.Point.CURVE().n >> 1n,
}

/**
 * Verifies an ECDSA-SHA-256 compact (r‖s) signature. `allowHighS` is per token kind: atproto tokens
 * demand low-S; service auth and request signatures accept either (wire contract §3).
 *
 * Verification runs in node:crypto (OpenSSL), several times faster than pure JS and on every
 * request's path. OpenSSL accepts high-S signatures, so the low-S rule is checked here first.
 */
export function verifySignature(
  curve: Curve,
  publicKey: Uint8Array,
  data: Uint8Array,
  signature: Uint8Array,
  opts: { allowHighS: boolean },
): boolean {
  const key = verificationKey(curve, publicKey, signature, opts)
  if (!key) return false
  try {
    return nodeVerify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature)
  } catch {
    return false
  }
}

/**
 * The same check on libuv's thread pool: the event loop stays free for other requests while the
 * curve arithmetic (about 0.6 ms for ES256K) runs on another core. For token verification, which
 * every credential exchange and every notifyWrite does.
 */
export function verifySignatureAsync(
  curve: Curve,
  publicKey: Uint8Array,
  data: Uint8Array,
  signature: Uint8Array,
  opts: { allowHighS: boolean },
): Promise<boolean> {
  const key = verificationKey(curve, publicKey, signature, opts)
  if (!key) return Promise.resolve(false)
  return new Promise((resolve) => {
    try {
      nodeVerify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature, (err, ok) =>
        resolve(!err && ok),
      )
    } catch {
      resolve(false)
    }
  })
}

/** The key to verify with, or undefined when the signature cannot be valid (size, high S, bad point). */
function verificationKey(
  curve: Curve,
  publicKey: Uint8Array,
  signature: Uint8Array,
  opts: { allowHighS: boolean },
): KeyObject | undefined {
  if (signature.length !== 64) return undefined
  if (!opts.allowHighS) {
    const sValue = BigInt(`0x${Buffer.from(signature.subarray(32)).toString('hex')}`)
    if (sValue > HALF_ORDER[curve]) return undefined
  }
  try {
    return publicKeyObject(curve, publicKey)
  } catch {
    return undefined
  }
}

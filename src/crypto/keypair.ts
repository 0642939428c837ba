import { hash, randomBytes, verify as nodeVerify, type KeyObject } from 'node:crypto'
import { createRequire } from 'node:module'
import { curveImpl as impl, formatDidKey, formatMultikey, type Curve } from './did-key.js'
import { isCompressedPoint, publicKeyObject } from './key-object.js'

/** JOSE `alg` for each curve's ECDSA-with-SHA-256 signatures. */
export const JWT_ALG: Record<Curve, 'ES256K' | 'ES256'> = { secp256k1: 'ES256K', p256: 'ES256' }

/** A private key Gatehouse signs with; the secret never appears in `toJSON` or `inspect` output. */
export class Keypair {
  readonly #secret: Uint8Array
  #did: string | undefined
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

  /** Worked out once: outbound token caches key on it per request. */
  did(): string {
    return (this.#did ??= formatDidKey(this.curve, this.publicKey))
  }

  multikey(): string {
    return formatMultikey(this.curve, this.publicKey)
  }

  /**
   * ECDSA over SHA-256(data), RFC 6979, compact r‖s, always low-S (atproto verifiers refuse high S).
   * libsecp256k1 (0.05–0.08 ms) and noble (0.6–1.1 ms) give the same bytes.
   */
  sign(data: Uint8Array): Uint8Array {
    if (usesLibsecp256k1(this.curve))
      return libsecp256k1!.ecdsaSign(sha256(data), this.#secret).signature
    return signWithNoble(this.curve, data, this.#secret)
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

/** One-shot: a Hash object per call is a native handle, and they made a busy server's GC slow. */
export function sha256(data: Uint8Array | string): Buffer {
  return hash('sha256', data, 'buffer')
}

/** The low-S rule: s must not exceed n / 2. */
const HALF_ORDER: Record<Curve, bigint> = {
  secp256k1: impl('secp256k1').Point.CURVE().n >> 1n,
  p256: impl('p256').Point.CURVE().n >> 1n,
}

interface Libsecp256k1 {
  contextRandomize(seed: Uint8Array): void
  ecdsaSign(msg32: Uint8Array, secret: Uint8Array): { signature: Uint8Array }
  ecdsaVerify(sig: Uint8Array, msg32: Uint8Array, publicKey: Uint8Array): boolean
  signatureNormalize(sig: Uint8Array): Uint8Array
}

/**
 * The `secp256k1` package's native binding only, never its JS fallback (signs 15× noble, verifies 5×
 * OpenSSL); the context is randomised once for side-channel blinding.
 */
export const libsecp256k1: Libsecp256k1 | undefined = (() => {
  try {
    const lib = createRequire(import.meta.url)('secp256k1/bindings.js') as Libsecp256k1
    lib.contextRandomize(randomBytes(32))
    return lib
  } catch {
    return undefined
  }
})()

export const usesLibsecp256k1 = (curve: Curve) =>
  curve === 'secp256k1' && libsecp256k1 !== undefined

/** Exported for the tests of both paths. */
export function signWithNoble(curve: Curve, data: Uint8Array, secret: Uint8Array): Uint8Array {
  return impl(curve).sign(data, secret, { prehash: true, lowS: true, format: 'compact' })
}

type SignatureCheck<R> = (
  curve: Curve,
  publicKey: Uint8Array,
  data: Uint8Array,
  signature: Uint8Array,
  opts: { allowHighS: boolean },
) => R

/** ECDSA-SHA-256, r‖s. Tokens demand low S; service auth and request signatures allow high S (§3). */
export const verifySignature: SignatureCheck<boolean> = (...check) =>
  (usesLibsecp256k1(check[0]) ? verifyWithLibsecp256k1 : verifyWithOpenSsl)(...check)

/** OpenSSL (0.6 ms for ES256K) on libuv's pool; libsecp256k1 inline, quicker than the trip there. */
export const verifySignatureAsync: SignatureCheck<Promise<boolean>> = (...check) =>
  usesLibsecp256k1(check[0])
    ? Promise.resolve(verifyWithLibsecp256k1(...check))
    : verifyWithOpenSslAsync(...check)

const P1363 = { dsaEncoding: 'ieee-p1363' } as const

/** Exported for the tests of both paths. */
export const verifyWithOpenSsl: SignatureCheck<boolean> = (curve, publicKey, data, sig, opts) => {
  const key = verificationKey(curve, publicKey, sig, opts)
  try {
    return key !== undefined && nodeVerify('sha256', data, { key, ...P1363 }, sig)
  } catch {
    return false // a malformed signature
  }
}

const verifyWithOpenSslAsync: SignatureCheck<Promise<boolean>> = (curve, pub, data, sig, opts) =>
  new Promise((resolve) => {
    const key = verificationKey(curve, pub, sig, opts)
    if (!key) return resolve(false)
    try {
      nodeVerify('sha256', data, { key, ...P1363 }, sig, (err, ok) => resolve(!err && ok))
    } catch {
      resolve(false) // a malformed signature
    }
  })

/** The OpenSSL path's rules; libsecp256k1 takes only low S, so an allowed high S is normalised. */
export const verifyWithLibsecp256k1: SignatureCheck<boolean> = (curve, key, data, sig, opts) => {
  if (!libsecp256k1 || curve !== 'secp256k1') throw new Error('libsecp256k1 checks ES256K only')
  if (sig.length !== 64 || !isCompressedPoint(key)) return false
  if (!opts.allowHighS && isHighS(curve, sig)) return false
  try {
    const lowS = opts.allowHighS ? libsecp256k1.signatureNormalize(Uint8Array.from(sig)) : sig
    return libsecp256k1.ecdsaVerify(lowS, sha256(data), key)
  } catch {
    return false // a point off the curve, or r or s not below the group order
  }
}

function isHighS(curve: Curve, signature: Uint8Array): boolean {
  return BigInt(`0x${Buffer.from(signature.subarray(32)).toString('hex')}`) > HALF_ORDER[curve]
}

/** Undefined when the signature cannot be valid (size, high S, bad point). */
function verificationKey(
  curve: Curve,
  publicKey: Uint8Array,
  signature: Uint8Array,
  opts: { allowHighS: boolean },
): KeyObject | undefined {
  if (signature.length !== 64) return undefined
  if (!opts.allowHighS && isHighS(curve, signature)) return undefined
  try {
    return publicKeyObject(curve, publicKey)
  } catch {
    return undefined
  }
}

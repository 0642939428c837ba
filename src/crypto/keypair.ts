import { hash, randomBytes, verify as nodeVerify, type KeyObject } from 'node:crypto'
import { createRequire } from 'node:module'
import { p256 } from '@noble/curves/nist.js'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { formatDidKey, formatMultikey, type Curve } from './did-key.js'
import { isCompressedPoint, publicKeyObject } from './key-object.js'

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

  /** The key as a did:key, worked out once (outbound token caches key on it per request). */
  did(): string {
    return (this.#did ??= formatDidKey(this.curve, this.publicKey))
  }

  multikey(): string {
    return formatMultikey(this.curve, this.publicKey)
  }

  /**
   * ECDSA over SHA-256(data), RFC 6979 nonce, compact r‖s, low-S. ES256K by libsecp256k1 when its
   * binding loads (0.05–0.08 ms; noble: 0.6–1.1 ms), with the same bytes as noble; otherwise noble.
   */
  sign(data: Uint8Array): Uint8Array {
    if (usesLibsecp256k1(this.curve)) return signWithLibsecp256k1(sha256(data), this.#secret)
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

/**
 * SHA-256 in one call. node:crypto's one-shot hash makes no Hash object: each of those is a native
 * handle the young-generation GC must process, and at a few per request they made the scavenges of a
 * busy server several times longer.
 */
export function sha256(data: Uint8Array | string): Buffer {
  return hash('sha256', data, 'buffer')
}

function bigintOf(bytes: Uint8Array): bigint {
  return BigInt(
    `0x${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')}`,
  )
}

/** Curve orders, for the low-S rule: s must not exceed n / 2. */
const HALF_ORDER: Record<Curve, bigint> = {
  secp256k1: secp256k1.Point.CURVE().n >> 1n,
  p256: p256.Point.CURVE().n >> 1n,
}

/** The verbs Gatehouse uses of libsecp256k1 (the `secp256k1` package's native binding). */
interface Libsecp256k1 {
  contextRandomize(seed: Uint8Array): void
  ecdsaSign(msg32: Uint8Array, secret: Uint8Array): { signature: Uint8Array }
  ecdsaVerify(sig: Uint8Array, msg32: Uint8Array, publicKey: Uint8Array): boolean
  signatureNormalize(sig: Uint8Array): Uint8Array
}

/**
 * libsecp256k1 through the `secp256k1` package's native binding only (never its pure-JS fallback):
 * signing about 15× noble, verification about 5× OpenSSL. Where it does not load, noble signs and
 * node:crypto verifies. The context is randomised once (the library's side-channel blinding).
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

/** Whether libsecp256k1 signs and checks this curve's signatures (ES256K, when it loaded). */
export const usesLibsecp256k1 = (curve: Curve) =>
  curve === 'secp256k1' && libsecp256k1 !== undefined

/** An ES256K signature of a SHA-256 digest by libsecp256k1: RFC 6979, always low S. */
function signWithLibsecp256k1(digest: Uint8Array, secret: Uint8Array): Uint8Array {
  return libsecp256k1!.ecdsaSign(digest, secret).signature
}

/** Keypair.sign through @noble/curves, whatever the curve (exported for the tests of both paths). */
export function signWithNoble(curve: Curve, data: Uint8Array, secret: Uint8Array): Uint8Array {
  return impl(curve).sign(data, secret, { prehash: true, lowS: true, format: 'compact' })
}

/** The arguments and answer of every signature check here. */
type SignatureCheck<R> = (
  curve: Curve,
  publicKey: Uint8Array,
  data: Uint8Array,
  signature: Uint8Array,
  opts: { allowHighS: boolean },
) => R

/**
 * Verifies an ECDSA-SHA-256 compact (r‖s) signature, by libsecp256k1 or else OpenSSL. `allowHighS`
 * is per token kind: atproto tokens demand low-S; service auth and request signatures accept either
 * (wire contract §3). OpenSSL accepts high S, so the rule is checked here first.
 */
export const verifySignature: SignatureCheck<boolean> = (...check) =>
  (usesLibsecp256k1(check[0]) ? verifyWithLibsecp256k1 : verifyWithOpenSsl)(...check)

/**
 * The same check off the event loop where it is slow: OpenSSL's (about 0.6 ms for ES256K) runs on
 * libuv's thread pool; libsecp256k1's is quicker than the trip there and back, so it runs inline.
 */
export const verifySignatureAsync: SignatureCheck<Promise<boolean>> = (...check) =>
  usesLibsecp256k1(check[0])
    ? Promise.resolve(verifyWithLibsecp256k1(...check))
    : verifyWithOpenSslAsync(...check)

const P1363 = { dsaEncoding: 'ieee-p1363' } as const

/** verifySignature through OpenSSL, whatever the curve (exported for the tests of both paths). */
export const verifyWithOpenSsl: SignatureCheck<boolean> = (curve, publicKey, data, sig, opts) => {
  const key = verificationKey(curve, publicKey, sig, opts)
  try {
    return key !== undefined && nodeVerify('sha256', data, { key, ...P1363 }, sig)
  } catch {
    return false // a malformed signature
  }
}

/** verifyWithOpenSsl on libuv's thread pool. */
const verifyWithOpenSslAsync: SignatureCheck<Promise<boolean>> = (
  curve,
  publicKey,
  data,
  sig,
  opts,
) =>
  new Promise((resolve) => {
    const key = verificationKey(curve, publicKey, sig, opts)
    if (!key) return resolve(false)
    try {
      nodeVerify('sha256', data, { key, ...P1363 }, sig, (err, ok) => resolve(!err && ok))
    } catch {
      resolve(false) // a malformed signature
    }
  })

/**
 * verifySignature for ES256K through libsecp256k1 (only when it is loaded), with the same rules as
 * the OpenSSL path: a 64-byte signature, a 33-byte compressed point on the curve, low S unless
 * allowed. libsecp256k1 only accepts low S, so an allowed high-S signature is verified in its
 * normalised form.
 */
export const verifyWithLibsecp256k1: SignatureCheck<boolean> = (curve, key, data, sig, opts) => {
  if (!libsecp256k1 || curve !== 'secp256k1') throw new Error('libsecp256k1 checks ES256K only')
  if (sig.length !== 64 || !isCompressedPoint(key)) return false
  if (!opts.allowHighS && isHighS(curve, sig)) return false
  try {
    const lowS = opts.allowHighS ? libsecp256k1.signatureNormalize(Uint8Array.from(sig)) : sig
    return libsecp256k1.ecdsaVerify(lowS, sha256(data), key)
  } catch {
    // A point not on the curve, or r or s not below the group order.
    return false
  }
}

function isHighS(curve: Curve, signature: Uint8Array): boolean {
  return bigintOf(signature.subarray(32)) > HALF_ORDER[curve]
}

/** The key to verify with, or undefined when the signature cannot be valid (size, high S, bad point). */
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

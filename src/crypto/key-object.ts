import { createPublicKey, ECDH, type KeyObject } from 'node:crypto'

/**
 * Cached OpenSSL key objects. Every request names a key, so the import is the quickest: decompressed
 * by OpenSSL (which refuses a point off the curve), imported as a JWK (40 µs less than SPKI DER).
 */

export type Curve = 'secp256k1' | 'p256'

const OPENSSL_NAME: Record<Curve, string> = { p256: 'prime256v1', secp256k1: 'secp256k1' }
const JWK_CRV: Record<Curve, string> = { p256: 'P-256', secp256k1: 'secp256k1' }

const CACHE_MAX = 10_000
const cache = new Map<string, KeyObject>()

/** The shape only, not whether the point is on a curve. */
export function isCompressedPoint(key: Uint8Array): boolean {
  return key.length === 33 && (key[0] === 2 || key[0] === 3)
}

/** Throws when the point is not on the curve. */
export function publicKeyObject(curve: Curve, compressed: Uint8Array): KeyObject {
  if (!isCompressedPoint(compressed)) throw new Error('expected a 33-byte compressed point')
  const id = `${curve}:${Buffer.from(compressed).toString('hex')}`
  let key = cache.get(id)
  if (!key) {
    const point = ECDH.convertKey(
      compressed,
      OPENSSL_NAME[curve],
      undefined,
      undefined,
      'uncompressed',
    ) as Buffer
    key = createPublicKey({
      key: {
        kty: 'EC',
        crv: JWK_CRV[curve],
        x: point.subarray(1, 33).toString('base64url'),
        y: point.subarray(33, 65).toString('base64url'),
      },
      format: 'jwk',
    })
    if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!)
    cache.set(id, key)
  }
  return key
}

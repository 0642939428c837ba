import { createPublicKey, type KeyObject } from 'node:crypto'
import type { Curve } from './did-key.js'

/**
 * Compressed public keys as OpenSSL key objects, cached. Importing a compressed point through SPKI DER
 * validates it and does the point decompression in C, which costs a fraction of doing it in JS, and
 * it happens for every key a request names (a fresh holder key in every credential exchange).
 */

/** DER of SubjectPublicKeyInfo up to the BIT STRING holding a 33-byte compressed point. */
const SPKI_PREFIX: Record<Curve, Buffer> = {
  // SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (33 bytes) }
  p256: Buffer.from('3039301306072a8648ce3d020106082a8648ce3d030107032200', 'hex'),
  // SEQUENCE { SEQUENCE { id-ecPublicKey, secp256k1 }, BIT STRING (33 bytes) }
  secp256k1: Buffer.from('3036301006072a8648ce3d020106052b8104000a032200', 'hex'),
}

const CACHE_MAX = 10_000
const cache = new Map<string, KeyObject>()

/** 33 bytes with a compressed point's prefix (whether the point is on a curve is another matter). */
export function isCompressedPoint(key: Uint8Array): boolean {
  return key.length === 33 && (key[0] === 2 || key[0] === 3)
}

/** The key object of a 33-byte compressed point. Throws when the point is not on the curve. */
export function publicKeyObject(curve: Curve, compressed: Uint8Array): KeyObject {
  if (!isCompressedPoint(compressed)) throw new Error('expected a 33-byte compressed point')
  const id = `${curve}:${Buffer.from(compressed).toString('hex')}`
  let key = cache.get(id)
  if (!key) {
    key = createPublicKey({
      key: Buffer.concat([SPKI_PREFIX[curve], compressed]),
      format: 'der',
      type: 'spki',
    })
    if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!)
    cache.set(id, key)
  }
  return key
}

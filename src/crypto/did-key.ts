import { base58 } from '@scure/base'
import { p256 } from '@noble/curves/nist.js'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { publicKeyObject, type Curve } from './key-object.js'

/** did:key and Multikey (atproto cryptography spec): `z` + base58btc(multicodec ‖ compressed point). */

export type { Curve }

/** Multicodec varints: secp256k1-pub (0xe7) and p256-pub (0x1200). */
const CODEC_PREFIX: Record<Curve, Uint8Array> = {
  secp256k1: Uint8Array.of(0xe7, 0x01),
  p256: Uint8Array.of(0x80, 0x24),
}

export const DID_KEY_PREFIX = 'did:key:'

export class KeyFormatError extends Error {
  override name = 'KeyFormatError'
}

export function curveImpl(curve: Curve) {
  return curve === 'secp256k1' ? secp256k1 : p256
}

function compressPublicKey(curve: Curve, key: Uint8Array): Uint8Array {
  try {
    // OpenSSL validates a compressed point; compressing an uncompressed one (old PLC documents) does.
    if (key.length === 33) {
      publicKeyObject(curve, key)
      return Uint8Array.from(key)
    }
    return curveImpl(curve).Point.fromBytes(key).toBytes(true)
  } catch {
    throw new KeyFormatError(`not a valid ${curve} public key`)
  }
}

export function formatMultikey(curve: Curve, publicKey: Uint8Array): string {
  const compressed = compressPublicKey(curve, publicKey)
  const prefix = CODEC_PREFIX[curve]
  const bytes = new Uint8Array(prefix.length + compressed.length)
  bytes.set(prefix, 0)
  bytes.set(compressed, prefix.length)
  return `z${base58.encode(bytes)}`
}

export function formatDidKey(curve: Curve, publicKey: Uint8Array): string {
  return DID_KEY_PREFIX + formatMultikey(curve, publicKey)
}

export interface ParsedKey {
  curve: Curve
  /** Compressed SEC1. */
  publicKey: Uint8Array
}

function decodeBase58btc(multibase: string): Uint8Array {
  if (!multibase.startsWith('z')) throw new KeyFormatError('multibase key must be base58btc (z…)')
  try {
    return base58.decode(multibase.slice(1))
  } catch {
    throw new KeyFormatError('multibase key is not valid base58btc')
  }
}

export function parseMultikey(multibase: string): ParsedKey {
  const bytes = decodeBase58btc(multibase)
  for (const curve of ['secp256k1', 'p256'] as const) {
    const prefix = CODEC_PREFIX[curve]
    if (bytes[0] === prefix[0] && bytes[1] === prefix[1]) {
      return { curve, publicKey: compressPublicKey(curve, bytes.subarray(2)) }
    }
  }
  throw new KeyFormatError('unsupported key type: only secp256k1 and P-256 keys are accepted')
}

/** Legacy `Ecdsa…VerificationKey2019` methods (still served by PLC): the raw point, no multicodec. */
export function parseLegacyMultibase(curve: Curve, multibase: string): ParsedKey {
  return { curve, publicKey: compressPublicKey(curve, decodeBase58btc(multibase)) }
}

export function parseDidKey(didKey: string): ParsedKey {
  if (!didKey.startsWith(DID_KEY_PREFIX)) throw new KeyFormatError('not a did:key')
  return parseMultikey(didKey.slice(DID_KEY_PREFIX.length))
}

import { secp256k1 } from '@noble/curves/secp256k1.js'
import { p256 } from '@noble/curves/nist.js'

/** Ways to break a valid token, one thing at a time. */

const N = { secp256k1: secp256k1.Point.CURVE().n, p256: p256.Point.CURVE().n }

/** The same signature with s replaced by n − s: still valid ECDSA, but high-S. */
export function highS(token: string, curve: 'secp256k1' | 'p256'): string {
  const [h, p, s] = token.split('.') as [string, string, string]
  const sig = Buffer.from(s, 'base64url')
  const sVal = BigInt(`0x${sig.subarray(32).toString('hex')}`)
  const flipped = (N[curve] - sVal).toString(16).padStart(64, '0')
  return `${h}.${p}.${Buffer.concat([sig.subarray(0, 32), Buffer.from(flipped, 'hex')]).toString('base64url')}`
}

/** Flips one bit of the signature. */
export function tamperSignature(token: string): string {
  const [h, p, s] = token.split('.') as [string, string, string]
  const sig = Buffer.from(s, 'base64url')
  sig[sig.length - 1] = sig[sig.length - 1]! ^ 1
  return `${h}.${p}.${sig.toString('base64url')}`
}

/** Rewrites the header and/or payload, keeping the old (now wrong) signature. */
export function rewrite(
  token: string,
  edit: {
    header?: (h: Record<string, unknown>) => void
    payload?: (p: Record<string, unknown>) => void
  },
): string {
  const [h, p, s] = token.split('.') as [string, string, string]
  const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as Record<string, unknown>
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>
  edit.header?.(header)
  edit.payload?.(payload)
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url')
  return `${enc(header)}.${enc(payload)}.${s}`
}

import { base32nopad } from '@scure/base'
import { createHash, randomBytes } from 'node:crypto'
const B64URL_RE = /^[A-Za-z0-9_-]*$/

export function toBase64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url')
}

/** Undefined for anything but canonical unpadded base64url (RFC 4648 §5). */
export function fromBase64Url(s: string): Uint8Array | undefined {
  if (!B64URL_RE.test(s) || s.length % 4 === 1) return undefined
  const bytes = Buffer.from(s, 'base64url')
  // Reject non-canonical encodings (stray bits in the last character).
  if (bytes.toString('base64url') !== s) return undefined
  return new Uint8Array(bytes)
}

export const utf8 = new TextEncoder()

/** How a bearer secret (an API token, an invite code) is kept: its SHA-256, hex. */
export const secretHash = (secret: string) => createHash('sha256').update(secret).digest('hex')

/** A row id shown to people and typed on command lines: hex, so it never starts with `-`. */
export const newRowId = () => randomBytes(9).toString('hex')

/**
 * A secret people pass around and type as a command-line argument (an invite code): 160 random
 * bits as 32 characters of lowercase base32 (RFC 4648 alphabet), so it never starts with `-` (an
 * option to a command-line parser) and survives being read aloud or case-folded.
 */
export const newSecretCode = () => base32nopad.encode(randomBytes(20)).toLowerCase()

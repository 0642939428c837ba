import { expand } from '@noble/hashes/hkdf.js'
import { hmac } from '@noble/hashes/hmac.js'
import { sha256 } from '@noble/hashes/sha2.js'
import type { Curve } from '../../src/crypto/did-key.js'
import { utf8 } from '../../src/crypto/encoding.js'
import { verifySignature } from '../../src/crypto/keypair.js'

/**
 * The signed space-repo commit (`com.atproto.space.defs#signedCommit`, contract §2.2): the author
 * signs a context that binds the space, the author, the revision and fresh key material, and a MAC
 * keyed from that context authenticates the LtHash digest. Pure.
 *
 *   ctx    = "atproto-space-v1" ‖ u16be(len) space ‖ u16be(len) author ‖ u16be(len) rev ‖ u16be(len) ikm
 *   macKey = HKDF-Expand(SHA-256, PRK = ikm, info = ctx, 32)   (expand only: no extract step)
 *   mac    = HMAC-SHA256(macKey, hash)
 *   sig    = author's signature over ctx
 */
export const COMMIT_TAG = 'atproto-space-v1'
export const COMMIT_VERSION = 1

function lengthPrefixed(bytes: Uint8Array): Uint8Array {
  if (bytes.length > 0xffff) throw new Error('commit context field too long')
  const out = new Uint8Array(2 + bytes.length)
  new DataView(out.buffer).setUint16(0, bytes.length, false)
  out.set(bytes, 2)
  return out
}

export function encodeCommitCtx(
  space: string,
  author: string,
  rev: string,
  ikm: Uint8Array,
): Uint8Array {
  const parts = [
    utf8.encode(COMMIT_TAG),
    ...[utf8.encode(space), utf8.encode(author), utf8.encode(rev), ikm].map(lengthPrefixed),
  ]
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let o = 0
  for (const p of parts) {
    out.set(p, o)
    o += p.length
  }
  return out
}

export function commitMacKey(ikm: Uint8Array, ctx: Uint8Array): Uint8Array {
  return expand(sha256, ikm, ctx, 32)
}

export function commitMac(macKey: Uint8Array, hash: Uint8Array): Uint8Array {
  return hmac(sha256, macKey, hash)
}

export interface SignedCommit {
  ver: number
  hash: Uint8Array
  ikm: Uint8Array
  sig: Uint8Array
  mac: Uint8Array
  rev: string
}

const equal = (a: Uint8Array, b: Uint8Array) =>
  a.length === b.length && a.every((v, i) => v === b[i])

/** True when `commit` is a version-1 commit by `author`'s key for `space`, with a MAC over its hash. */
export function verifyCommit(
  commit: SignedCommit,
  space: string,
  author: string,
  key: { curve: Curve; publicKey: Uint8Array },
): boolean {
  if (commit.ver !== COMMIT_VERSION) return false
  const ctx = encodeCommitCtx(space, author, commit.rev, commit.ikm)
  if (!equal(commitMac(commitMacKey(commit.ikm, ctx), commit.hash), commit.mac)) return false
  return verifySignature(key.curve, key.publicKey, ctx, commit.sig, { allowHighS: false })
}

import { createBLAKE3 } from 'hash-wasm'
import { sha256 } from '@noble/hashes/sha2.js'
import { utf8 } from './encoding.js'

/**
 * LtHash (contract §2.2): 1024 little-endian u16 lanes; each element is BLAKE3-XOF'd to 2048 bytes
 * and added or subtracted lane by lane mod 2^16; the digest is SHA-256 of the state. A multiset hash.
 */
export const LTHASH_LANES = 1024
export const LTHASH_BYTES = LTHASH_LANES * 2

/** WebAssembly BLAKE3, 8× pure JS (a bulk import hashes every member); one instance: it is sync. */
const xof = await createBLAKE3(LTHASH_BYTES * 8)

function expand(element: string): Uint8Array {
  xof.init()
  xof.update(utf8.encode(element))
  return xof.digest('binary')
}

export class LtHash {
  private readonly lanes: Uint16Array

  constructor(state?: Uint8Array) {
    this.lanes = new Uint16Array(LTHASH_LANES)
    if (state) {
      if (state.length !== LTHASH_BYTES)
        throw new Error(`LtHash state must be ${LTHASH_BYTES} bytes`)
      const view = new DataView(state.buffer, state.byteOffset, state.byteLength)
      for (let i = 0; i < LTHASH_LANES; i++) this.lanes[i] = view.getUint16(i * 2, true)
    }
  }

  private apply(element: string, sign: 1 | -1): this {
    const expanded = expand(element)
    const view = new DataView(expanded.buffer, expanded.byteOffset, expanded.byteLength)
    for (let i = 0; i < LTHASH_LANES; i++) {
      // Uint16Array stores mod 2^16, so wrap-around is exactly the lane arithmetic we want.
      this.lanes[i] = this.lanes[i]! + sign * view.getUint16(i * 2, true)
    }
    return this
  }

  add(element: string): this {
    return this.apply(element, 1)
  }

  remove(element: string): this {
    return this.apply(element, -1)
  }

  state(): Uint8Array {
    const out = new Uint8Array(LTHASH_BYTES)
    const view = new DataView(out.buffer)
    for (let i = 0; i < LTHASH_LANES; i++) view.setUint16(i * 2, this.lanes[i]!, true)
    return out
  }

  digest(): Uint8Array {
    return sha256(this.state())
  }
}

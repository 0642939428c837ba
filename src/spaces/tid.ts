import { randomInt } from 'node:crypto'

/**
 * TIDs: base32-sortable 64 bits (0, 53 bits of microseconds, a 10-bit clock id), so string order is
 * time order. `nextTid` is strictly increasing even when the clock stands still or steps back.
 */

const S32 = '234567abcdefghijklmnopqrstuvwxyz'

export function encodeTid(micros: bigint, clockId: number): string {
  let v = (micros << 10n) | BigInt(clockId & 0x3ff)
  let out = ''
  for (let i = 0; i < 13; i++) {
    out = S32[Number(v & 31n)]! + out
    v >>= 5n
  }
  return out
}

export function decodeTid(tid: string): { micros: bigint; clockId: number } {
  let v = 0n
  for (const c of tid) {
    const i = S32.indexOf(c)
    if (i < 0) throw new Error(`not a TID: ${tid}`)
    v = (v << 5n) | BigInt(i)
  }
  return { micros: v >> 10n, clockId: Number(v & 0x3ffn) }
}

/** One clock id per process keeps TIDs minted by different processes apart. */
const CLOCK_ID = randomInt(0, 1024)

/** A TID later than both `nowMs` and `previous`. */
export function nextTid(nowMs: number, previous?: string): string {
  let micros = BigInt(nowMs) * 1000n
  if (previous) {
    const prev = decodeTid(previous).micros
    if (micros <= prev) micros = prev + 1n
  }
  return encodeTid(micros, CLOCK_ID)
}

/** The parts of RFC 8941 that RFC 9421 signatures need (Dictionary in, Inner List out), strictly. */

export type BareItem = string | number | boolean | Uint8Array | { token: string }
export type Params = [string, BareItem][]
export interface Item {
  value: BareItem
  params: Params
}
export interface InnerList {
  items: Item[]
  params: Params
}
export type Member = Item | InnerList

export class StructuredFieldError extends Error {
  override name = 'StructuredFieldError'
}

export const isInnerList = (m: Member): m is InnerList => 'items' in m

class Parser {
  i = 0
  constructor(readonly s: string) {}

  fail(what: string): never {
    throw new StructuredFieldError(`${what} at offset ${this.i}`)
  }
  peek(): string | undefined {
    return this.s[this.i]
  }
  skipSP(): void {
    while (this.s[this.i] === ' ') this.i++
  }
  skipOWS(): void {
    while (this.s[this.i] === ' ' || this.s[this.i] === '\t') this.i++
  }

  key(): string {
    const m = /^[a-z*][a-z0-9_\-.*]*/.exec(this.s.slice(this.i))
    if (!m) this.fail('expected a key')
    this.i += m[0].length
    return m[0]
  }

  bareItem(): BareItem {
    const c = this.peek()
    if (c === '"') return this.string()
    if (c === ':') return this.bytes()
    if (c === '?') {
      this.i++
      const b = this.s[this.i++]
      if (b === '1') return true
      if (b === '0') return false
      this.fail('bad boolean')
    }
    if (c !== undefined && /[-0-9]/.test(c)) return this.number()
    if (c !== undefined && /[A-Za-z*]/.test(c)) {
      const m = /^[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*/.exec(this.s.slice(this.i))!
      this.i += m[0].length
      return { token: m[0] }
    }
    return this.fail('expected an item')
  }

  string(): string {
    this.i++ // opening quote
    let out = ''
    for (;;) {
      const c = this.s[this.i++]
      if (c === undefined) this.fail('unterminated string')
      if (c === '\\') {
        const n = this.s[this.i++]
        if (n !== '"' && n !== '\\') this.fail('bad escape')
        out += n
      } else if (c === '"') {
        return out
      } else {
        const code = c.charCodeAt(0)
        if (code < 0x20 || code > 0x7e) this.fail('bad string character')
        out += c
      }
    }
  }

  bytes(): Uint8Array {
    this.i++
    const end = this.s.indexOf(':', this.i)
    if (end < 0) this.fail('unterminated byte sequence')
    const b64 = this.s.slice(this.i, end)
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) this.fail('bad byte sequence')
    this.i = end + 1
    return new Uint8Array(Buffer.from(b64, 'base64'))
  }

  number(): number {
    const m = /^-?\d{1,15}(\.\d{1,3})?/.exec(this.s.slice(this.i))
    if (!m) this.fail('bad number')
    this.i += m[0].length
    return Number(m[0])
  }

  params(): Params {
    const out: Params = []
    while (this.peek() === ';') {
      this.i++
      this.skipSP()
      const k = this.key()
      let v: BareItem = true
      if (this.peek() === '=') {
        this.i++
        v = this.bareItem()
      }
      const existing = out.findIndex(([name]) => name === k)
      if (existing >= 0) out.splice(existing, 1)
      out.push([k, v])
    }
    return out
  }

  innerList(): InnerList {
    this.i++ // (
    const items: Item[] = []
    for (;;) {
      this.skipSP()
      if (this.peek() === ')') {
        this.i++
        return { items, params: this.params() }
      }
      items.push({ value: this.bareItem(), params: this.params() })
      const c = this.peek()
      if (c !== ' ' && c !== ')') this.fail('expected space or ) in inner list')
    }
  }

  member(): Member {
    if (this.peek() === '(') return this.innerList()
    return { value: this.bareItem(), params: this.params() }
  }
}

/** Duplicate keys: the last wins, as RFC 8941 says. */
export function parseDictionary(input: string): Map<string, Member> {
  const p = new Parser(input)
  const out = new Map<string, Member>()
  p.skipSP()
  if (p.i >= input.length) return out
  for (;;) {
    const key = p.key()
    let member: Member
    if (p.peek() === '=') {
      p.i++
      member = p.member()
    } else {
      member = { value: true, params: p.params() }
    }
    out.delete(key)
    out.set(key, member)
    p.skipOWS()
    if (p.i >= input.length) return out
    if (p.peek() !== ',') p.fail('expected ,')
    p.i++
    p.skipOWS()
    if (p.i >= input.length) p.fail('trailing comma')
  }
}

function serializeBareItem(v: BareItem): string {
  if (typeof v === 'string') return `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`
  if (typeof v === 'number') return String(v)
  if (typeof v === 'boolean') return v ? '?1' : '?0'
  if (v instanceof Uint8Array) return `:${Buffer.from(v).toString('base64')}:`
  return v.token
}

function serializeParams(params: Params): string {
  return params.map(([k, v]) => (v === true ? `;${k}` : `;${k}=${serializeBareItem(v)}`)).join('')
}

export function serializeInnerList(list: InnerList): string {
  const items = list.items.map((it) => serializeBareItem(it.value) + serializeParams(it.params))
  return `(${items.join(' ')})${serializeParams(list.params)}`
}

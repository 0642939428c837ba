import type { Readable } from 'node:stream'
import { InvalidRequestError } from '../errors.js'

/** JSON lines from a body as they arrive, blank ones skipped; an overlong line or too many: 400. */
export async function* readJsonLines(
  stream: Readable,
  opts: { maxLineBytes: number; maxLines: number },
): AsyncGenerator<{ line: number; value: unknown }> {
  let pending = ''
  let line = 0
  const emit = function* (text: string) {
    line++
    if (line > opts.maxLines) throw new InvalidRequestError(`more than ${opts.maxLines} lines`)
    if (text.trim() === '') return
    try {
      yield { line, value: JSON.parse(text) as unknown }
    } catch {
      throw new InvalidRequestError(`line ${line} is not JSON`)
    }
  }
  for await (const chunk of stream) {
    pending += typeof chunk === 'string' ? chunk : (chunk as Buffer).toString('utf8')
    let nl: number
    while ((nl = pending.indexOf('\n')) >= 0) {
      const text = pending.slice(0, nl)
      pending = pending.slice(nl + 1)
      if (Buffer.byteLength(text) > opts.maxLineBytes)
        throw new InvalidRequestError(`line ${line + 1} is too long`)
      yield* emit(text)
    }
    if (Buffer.byteLength(pending) > opts.maxLineBytes)
      throw new InvalidRequestError(`line ${line + 1} is too long`)
  }
  if (pending !== '') yield* emit(pending)
}

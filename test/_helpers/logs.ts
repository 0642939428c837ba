import { Writable } from 'node:stream'

/** Log lines captured in memory, so tests can assert what was (and was not) logged. */
export class LogCapture extends Writable {
  readonly lines: string[] = []
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    this.lines.push(...chunk.toString('utf8').split('\n').filter(Boolean))
    done()
  }
  get entries(): Record<string, unknown>[] {
    return this.lines.map((l) => JSON.parse(l) as Record<string, unknown>)
  }
  text(): string {
    return this.lines.join('\n')
  }
}

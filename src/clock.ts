/** The one source of time. Token expiry, TTLs and retries read it, so tests can move time without sleeping. */
export interface Clock {
  now(): Date
  nowMs(): number
  /** Whole seconds since the epoch, as JWT `iat`/`exp` use. */
  nowSec(): number
}

export const systemClock: Clock = {
  now: () => new Date(),
  nowMs: () => Date.now(),
  nowSec: () => Math.floor(Date.now() / 1000),
}

/** A clock that only moves when told to: for tests and benchmarks. */
export class ManualClock implements Clock {
  private ms: number

  constructor(start: Date | number = Date.now()) {
    this.ms = typeof start === 'number' ? start : start.getTime()
  }

  now(): Date {
    return new Date(this.ms)
  }

  nowMs(): number {
    return this.ms
  }

  nowSec(): number {
    return Math.floor(this.ms / 1000)
  }

  advance(ms: number): void {
    this.ms += ms
  }

  set(at: Date | number): void {
    this.ms = typeof at === 'number' ? at : at.getTime()
  }
}

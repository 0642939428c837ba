import type { Clock } from '../../src/clock.js'

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

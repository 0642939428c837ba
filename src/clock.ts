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

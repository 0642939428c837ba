import type { FetchError } from '../../src/net/safe-fetch.js'

/** The FetchError kind an outbound request fails with, or 'ok'. */
export const kindOf = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'ok',
    (e: FetchError) => e.kind,
  )

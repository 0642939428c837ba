import type { FetchError } from '../../src/net/safe-fetch.js'

/** The FetchError kind an outbound request fails with, or 'ok'. */
export const kindOf = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'ok',
    (e: FetchError) => e.kind,
  )

/** An answer's body: JSON lines as an array of values, JSON as its value, nothing as undefined. */
export async function answerBody(res: Response): Promise<{ body: any; ndjson: boolean }> {
  const text = await res.text()
  const ndjson = !!res.headers.get('content-type')?.startsWith('application/x-ndjson')
  const body = ndjson
    ? text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
    : text
      ? JSON.parse(text)
      : undefined
  return { body, ndjson }
}

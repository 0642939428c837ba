import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { jsonToLex, Lexicons, type LexiconDoc } from '@atproto/lexicon'
import { PACKAGE_ROOT } from '../../src/paths.js'
import { parseSpaceRef } from '../../src/lexicon/formats.js'

/**
 * The public reference lexicons of both wire generations (test/fixtures/lexicons, see its README),
 * checked with the reference validator, @atproto/lexicon: what a generation A or C peer that
 * validates, as the reference does, accepts from us. That validator does not know the `space-ref`
 * format (it skips it), so space references are checked here with our own parser.
 */
export type Generation = 'A' | 'C'

const DIR = join(PACKAGE_ROOT, 'test/fixtures/lexicons')

function load(gen: Generation): Lexicons {
  const dir = join(DIR, gen === 'A' ? 'gen-a' : 'gen-c')
  const docs = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as LexiconDoc)
  return new Lexicons(docs)
}

const cache = new Map<Generation, Lexicons>()
const lexicons = (gen: Generation) => {
  let l = cache.get(gen)
  if (!l) cache.set(gen, (l = load(gen)))
  return l
}

function assertSpaceRefs(value: unknown): void {
  for (const key of ['space', 'uri']) {
    const v = (value as Record<string, unknown> | undefined)?.[key]
    if (v !== undefined && (typeof v !== 'string' || !parseSpaceRef(v)))
      throw new Error(`${key} must be a space reference`)
  }
}

/** Throws (the reference validator's message) unless `json` is a valid input of `nsid` in `gen`. */
export function assertValidInput(gen: Generation, nsid: string, json: unknown): void {
  lexicons(gen).assertValidXrpcInput(nsid, jsonToLex(json as never))
  assertSpaceRefs(json)
}

export function assertValidOutput(gen: Generation, nsid: string, json: unknown): void {
  lexicons(gen).assertValidXrpcOutput(nsid, jsonToLex(json as never))
  assertSpaceRefs(json)
}

export function assertValidParams(
  gen: Generation,
  nsid: string,
  params: Record<string, unknown>,
): void {
  lexicons(gen).assertValidXrpcParams(nsid, params)
  assertSpaceRefs(params)
}

/** The same checks as booleans with the reason, for t.ok / t.notOk. */
export function validity(check: () => void): true | string {
  try {
    check()
    return true
  } catch (err) {
    return (err as Error).message
  }
}

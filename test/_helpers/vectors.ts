import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { PACKAGE_ROOT } from '../../src/paths.js'

/** The reference implementation's conformance data, from ../shared/vectors beside the checkout. */
export const VECTORS_DIR =
  process.env.GATEHOUSE_TEST_VECTORS_DIR ?? join(PACKAGE_ROOT, '../shared/vectors')

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function loadVectors(name: string): any {
  return JSON.parse(readFileSync(join(VECTORS_DIR, `${name}.json`), 'utf8'))
}

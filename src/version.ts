import { readFileSync } from 'node:fs'
import { PACKAGE_ROOT } from './paths.js'
import { join } from 'node:path'

/** The version in package.json, read once. */
export const VERSION: string = (
  JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }
).version

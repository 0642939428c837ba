import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The package root (holds prisma/, policies/, lexicons/ and generated/), from src/ or dist/. */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')

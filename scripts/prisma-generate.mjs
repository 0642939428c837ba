// Generates one Prisma client per supported database from prisma/schema.prisma.
// Prisma binds a generated client to one provider, so the PostgreSQL schema is derived here
// (provider and output swapped) rather than kept by hand. Runs offline: engineType "client".
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const source = readFileSync(join(root, 'prisma/schema.prisma'), 'utf8')

export function postgresSchema(text) {
  const out = text
    .replace('provider = "sqlite"', 'provider = "postgresql"')
    .replace('output     = "../generated/prisma-sqlite"', 'output     = "./prisma-pg"')
  if (out === text || !out.includes('"postgresql"') || !out.includes('./prisma-pg')) {
    throw new Error(
      'prisma/schema.prisma: provider or output line not found; update scripts/prisma-generate.mjs',
    )
  }
  return out
}

mkdirSync(join(root, 'generated'), { recursive: true })
const pgSchemaPath = join(root, 'generated/schema.postgresql.prisma')
writeFileSync(pgSchemaPath, postgresSchema(source))

const prisma = join(root, 'node_modules/prisma/build/index.js')
// The CLI must be able to read the datasource URL, or it falls back to downloading a native engine.
// Generating never connects, so a placeholder per provider is enough.
const targets = [
  [join(root, 'prisma/schema.prisma'), 'file::memory:'],
  [pgSchemaPath, 'postgresql://generate.invalid/gatehouse'],
]
for (const [schema, url] of targets) {
  const env = {
    ...process.env,
    GATEHOUSE_PRISMA_CLI_SCHEMA: schema,
    GATEHOUSE_PRISMA_CLI_URL: url,
    PRISMA_HIDE_UPDATE_MESSAGE: '1',
    CHECKPOINT_DISABLE: '1',
  }
  execFileSync(process.execPath, [prisma, 'generate', '--no-hints', '--schema', schema], {
    cwd: root,
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
  })
}
console.log('gatehouse: generated Prisma clients for sqlite and postgresql')

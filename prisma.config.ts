// Prisma CLI configuration. Gatehouse applies its own migrations at start (src/db/migrate.ts); the CLI
// is used only offline, to generate clients and to write migration SQL. `engine: 'js'` with a driver
// adapter keeps the CLI from downloading a native schema engine, which cannot be fetched here.
import { defineConfig } from 'prisma/config'

// The scripts under scripts/ name the schema and URL together (GATEHOUSE_PRISMA_CLI_SCHEMA and
// GATEHOUSE_PRISMA_CLI_URL): when the CLI's start-up check sees a URL that does not fit the schema's
// provider, it silently falls back to downloading a native query engine.
export default defineConfig({
  schema: process.env.GATEHOUSE_PRISMA_CLI_SCHEMA ?? 'prisma/schema.prisma',
  experimental: { adapter: true },
  engine: 'js',
  async adapter() {
    const url = process.env.GATEHOUSE_PRISMA_CLI_URL ?? 'file::memory:'
    if (/^postgres(ql)?:/.test(url)) {
      const { PrismaPg } = await import('@prisma/adapter-pg')
      return new PrismaPg({ connectionString: url })
    }
    const { PrismaBetterSQLite3 } = await import('@prisma/adapter-better-sqlite3')
    return new PrismaBetterSQLite3({ url })
  },
})

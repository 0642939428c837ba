import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'

/**
 * A database of its own for one test: a temporary SQLite file, or, when GATEHOUSE_TEST_DATABASE_URL
 * names a PostgreSQL server (the CI PostgreSQL leg), a fresh schema in it that is dropped afterwards.
 */
export interface TestDatabase {
  url: string
  kind: 'sqlite' | 'postgres'
  cleanup(): Promise<void>
}

let counter = 0

export function testPostgresUrl(): string | undefined {
  const url = process.env.GATEHOUSE_TEST_DATABASE_URL
  return url && /^postgres(ql)?:\/\//.test(url) ? url : undefined
}

/** `kind: 'sqlite'` gives SQLite even in the PostgreSQL leg (a test that needs one of each). */
export async function createTestDatabase(
  label = 'test',
  opts: { kind?: 'sqlite' } = {},
): Promise<TestDatabase> {
  const base = opts.kind === 'sqlite' ? undefined : testPostgresUrl()
  if (base) {
    const slug = label
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '_')
      .slice(0, 30)
    const schema = `t_${slug}_${process.pid}_${++counter}_${Math.random().toString(36).slice(2, 8)}`
    const u = new URL(base)
    u.searchParams.set('schema', schema)
    return {
      url: u.toString(),
      kind: 'postgres',
      async cleanup() {
        const client = new pg.Client({ connectionString: base })
        await client.connect()
        try {
          await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
        } finally {
          await client.end()
        }
      },
    }
  }
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-test-'))
  return {
    url: `file:${join(dir, 'gatehouse.sqlite')}`,
    kind: 'sqlite',
    async cleanup() {
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/**
 * A data dir and a database of the test's own for a `gatehouse` process (the database on
 * PostgreSQL in the CI leg that sets GATEHOUSE_TEST_DATABASE_URL), removed when the test ends.
 */
export async function processWorld(
  t: { teardown(fn: () => unknown): void },
  label: string,
): Promise<{ dataDir: string; db: TestDatabase }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-proc-'))
  const db = await createTestDatabase(label)
  t.teardown(async () => {
    rmSync(dataDir, { recursive: true, force: true })
    await db.cleanup()
  })
  return { dataDir, db }
}

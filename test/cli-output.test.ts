/**
 * Operator commands of the real `gatehouse` process are pipe-safe: their JSON result alone on
 * stdout, their log lines (first-run migrations among them) on stderr.
 */
import t from 'tap'
import { processWorld } from './_helpers/db.js'
import { runGatehouse } from './_helpers/process.js'

t.test('operator commands print results on stdout and logs on stderr', async (t) => {
  const { dataDir, db } = await processWorld(t, 'pipes')
  const env = { GATEHOUSE_DATA_DIR: dataDir, GATEHOUSE_DATABASE_URL: db.url }
  // The first command against a new database applies migrations, and logs that it did.
  const list = runGatehouse(['authority', 'list'], env)
  t.equal((await list.exited).code, 0, list.stderr.join('\n'))
  t.same(JSON.parse(list.stdout.join('\n')), [], 'stdout is the result alone')
  t.ok(
    list.stderr.some((l) => /applied database migrations/.test(l)),
    'the migration log line is on stderr',
  )

  const rotate = runGatehouse(['kek', 'rotate'], env)
  t.equal((await rotate.exited).code, 0, rotate.stderr.join('\n'))
  t.equal(rotate.stdout.length, 1)
  t.match(JSON.parse(rotate.stdout[0]!), { rewrapped: 0, kekId: /^[0-9a-f]{16}$/ })
})

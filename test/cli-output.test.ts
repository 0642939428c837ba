/**
 * Operator commands of the real `gatehouse` process are pipe-safe: their JSON result alone on
 * stdout, their log lines (first-run migrations among them) on stderr, a refusal as one line there.
 */
import t from 'tap'
import { processWorld } from './_helpers/db.js'
import { PACKAGE_ROOT } from '../src/paths.js'
import { runCommand, runGatehouse } from './_helpers/process.js'

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

t.test('a member list goes through pipes: import from stdin, export as JSON lines', async (t) => {
  const { dataDir, db } = await processWorld(t, 'member-pipes')
  const env = {
    GATEHOUSE_DATA_DIR: dataDir,
    GATEHOUSE_DATABASE_URL: db.url,
    GATEHOUSE_DID_WEB_HOSTS: 'localhost%3A2590',
  }
  const authority = 'did:web:localhost%3A2590:club'
  const space = `at://${authority}/space/com.example.forum/general`
  for (const argv of [
    ['authority', 'create', '--web', authority],
    [
      'space',
      'create',
      authority,
      'com.example.forum',
      '--skey',
      'general',
      '--preset',
      'members-only',
    ],
  ]) {
    const run = runGatehouse(argv, env)
    t.equal((await run.exited).code, 0, run.stderr.join('\n'))
  }
  const lines = ['did:web:a.example', 'did:web:b.example']
    .map((did) => JSON.stringify({ did, read: true, write: false }))
    .join('\n')
  const gatehouse = `${JSON.stringify(process.execPath)} --import tsx src/bin.ts`
  const imported = runCommand(
    'bash',
    ['-c', `printf '%s\\n' '${lines}' | ${gatehouse} member import '${space}' -`],
    { cwd: PACKAGE_ROOT, env },
  )
  t.equal((await imported.exited).code, 0, imported.stderr.join('\n'))
  t.match(JSON.parse(imported.stdout.join('\n')), { received: 2, changed: 2 })

  const exported = runGatehouse(['member', 'export', space], env)
  t.equal((await exported.exited).code, 0, exported.stderr.join('\n'))
  t.same(
    exported.stdout.map((l) => JSON.parse(l)),
    [
      { did: 'did:web:a.example', read: true, write: false },
      { did: 'did:web:b.example', read: true, write: false },
    ],
  )

  const refused = runGatehouse(
    ['space', 'show', `at://${authority}/space/com.example.forum/nope`],
    env,
  )
  t.equal((await refused.exited).code, 2)
  t.same(refused.stdout, [], 'nothing on stdout')
  t.equal(refused.stderr.at(-1), 'gatehouse: SpaceNotFound: Space not found', 'one line on stderr')
})

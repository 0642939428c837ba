/**
 * Configuration: defaults that need no setup, nested sections, strict parsing, and one readable
 * error line naming the bad variable.
 */
import t from 'tap'
import { ConfigError, didWebForUrl, loadConfig } from '../src/config.js'

t.test('defaults need no environment at all', async (t) => {
  const { config, secrets } = loadConfig({})
  t.equal(config.service.port, 2590)
  t.equal(config.service.host, '127.0.0.1')
  t.equal(config.service.publicUrl, 'http://localhost:2590')
  t.equal(config.service.did, 'did:web:localhost%3A2590')
  t.match(config.service.dataDir, /\/data$/)
  t.equal(config.db.kind, 'sqlite')
  t.match(config.db.url, /^file:\/.*\/data\/gatehouse\.sqlite$/)
  t.equal(config.mode, 'development')
  t.equal(config.service.validateOutput, true)
  t.equal(config.service.bodyLimitBytes, 1024 * 1024)
  t.equal(config.service.requestTimeoutMs, 300_000)
  t.equal(config.service.maxConnections, 900)
  t.equal(config.service.maxConnectionsPerAddress, 128)
  t.same(secrets, {})
})

t.test('the public URL and did:web follow a changed port', async (t) => {
  const { config } = loadConfig({ GATEHOUSE_PORT: '8080' })
  t.equal(config.service.publicUrl, 'http://localhost:8080')
  t.equal(config.service.did, 'did:web:localhost%3A8080')
  t.equal(didWebForUrl('https://gatehouse.example.com'), 'did:web:gatehouse.example.com')
})

t.test('a postgres:// URL selects PostgreSQL', async (t) => {
  const { config } = loadConfig({ GATEHOUSE_DATABASE_URL: 'postgres://u@127.0.0.1:5432/gh' })
  t.equal(config.db.kind, 'postgres')
})

/** What production needs: an https public URL and a KEK outside the data dir. */
const PRODUCTION = {
  GATEHOUSE_ENV: 'production',
  GATEHOUSE_PUBLIC_URL: 'https://gatehouse.example.com',
  GATEHOUSE_KEK: 'ab'.repeat(32),
}

t.test('production turns output validation off unless asked for', async (t) => {
  t.equal(loadConfig(PRODUCTION).config.service.validateOutput, false)
  const forced = loadConfig({ ...PRODUCTION, GATEHOUSE_VALIDATE_OUTPUT: 'true' })
  t.equal(forced.config.service.validateOutput, true)
})

t.test('production refuses what only development may do, naming the variable', async (t) => {
  const refusals: [Record<string, string>, string, RegExp][] = [
    [{ GATEHOUSE_PUBLIC_URL: '' }, 'GATEHOUSE_PUBLIC_URL', /https.*"http:\/\/localhost:2590"/],
    [
      { GATEHOUSE_PUBLIC_URL: 'http://gatehouse.example.com' },
      'GATEHOUSE_PUBLIC_URL',
      /must be https in production/,
    ],
    [{ GATEHOUSE_ALLOW_PRIVATE_NETWORK: 'true' }, 'GATEHOUSE_ALLOW_PRIVATE_NETWORK', /production/],
    [
      { GATEHOUSE_KEK: '' },
      'GATEHOUSE_KEK',
      /\/data\/kek\.key.*GATEHOUSE_ALLOW_KEK_IN_DATA_DIR=true/,
    ],
    [
      { GATEHOUSE_KEK: '', GATEHOUSE_ALLOW_KEK_IN_DATA_DIR: 'false' },
      'GATEHOUSE_KEK',
      /must be set in production/,
    ],
  ]
  for (const [env, variable, message] of refusals) {
    const err = t.throws(() => loadConfig({ ...PRODUCTION, ...env })) as ConfigError
    t.ok(err instanceof ConfigError, `${JSON.stringify(env)} is refused`)
    t.equal(err.variable, variable)
    t.match(err.message, new RegExp(`^${variable}: `))
    t.match(err.message, message)
    t.notMatch(err.message, /\n/, 'one line')
  }
  const kekInDataDir = { ...PRODUCTION, GATEHOUSE_KEK: '', GATEHOUSE_ALLOW_KEK_IN_DATA_DIR: 'true' }
  const accepted = loadConfig(kekInDataDir)
  t.equal(accepted.config.service.allowKekInDataDir, true, 'the explicit setting accepts the file')
  t.same(accepted.secrets, {}, 'and the KEK comes from the data dir')
  t.equal(loadConfig(PRODUCTION).secrets.kekHex, 'ab'.repeat(32))
  t.doesNotThrow(
    () => loadConfig({ GATEHOUSE_ALLOW_PRIVATE_NETWORK: 'true' }),
    'outside production all three are fine',
  )
})

t.test('booleans parse "false" as false (no JavaScript truthiness)', async (t) => {
  t.equal(loadConfig({ GATEHOUSE_TRUST_PROXY: 'false' }).config.service.trustProxy, false)
  t.equal(loadConfig({ GATEHOUSE_TRUST_PROXY: 'true' }).config.service.trustProxy, true)
  t.throws(() => loadConfig({ GATEHOUSE_TRUST_PROXY: 'maybe' }), /GATEHOUSE_TRUST_PROXY/)
})

t.test('a bad value names its variable in one line', async (t) => {
  const cases: [Record<string, string>, string][] = [
    [{ GATEHOUSE_PORT: 'abc' }, 'GATEHOUSE_PORT'],
    [{ GATEHOUSE_PORT: '70000' }, 'GATEHOUSE_PORT'],
    [{ GATEHOUSE_PUBLIC_URL: 'ftp://x' }, 'GATEHOUSE_PUBLIC_URL'],
    [{ GATEHOUSE_PUBLIC_URL: 'https://x.example/path' }, 'GATEHOUSE_PUBLIC_URL'],
    [{ GATEHOUSE_DATABASE_URL: 'mysql://x' }, 'GATEHOUSE_DATABASE_URL'],
    [{ GATEHOUSE_LOG_LEVEL: 'loud' }, 'GATEHOUSE_LOG_LEVEL'],
    [{ GATEHOUSE_BODY_LIMIT_BYTES: '12' }, 'GATEHOUSE_BODY_LIMIT_BYTES'],
    [{ GATEHOUSE_PROT: '1' }, 'GATEHOUSE_PROT'],
    [{ GATEHOUSE_REQUEST_TIMEOUT_MS: '10' }, 'GATEHOUSE_REQUEST_TIMEOUT_MS'],
    [{ GATEHOUSE_MAX_CONNECTIONS: '0' }, 'GATEHOUSE_MAX_CONNECTIONS'],
    [{ GATEHOUSE_MAX_CONNECTIONS_PER_ADDRESS: '0' }, 'GATEHOUSE_MAX_CONNECTIONS_PER_ADDRESS'],
  ]
  for (const [env, variable] of cases) {
    const err = t.throws(() => loadConfig(env)) as ConfigError
    t.ok(err instanceof ConfigError, `${variable} gives a ConfigError`)
    t.equal(err.variable, variable)
    t.match(err.message, new RegExp(`^${variable}: `))
    t.notMatch(err.message, /\n/, 'one line')
  }
})

t.test('a bad key is named but never echoed', async (t) => {
  for (const variable of ['GATEHOUSE_SERVICE_KEY', 'GATEHOUSE_KEK', 'GATEHOUSE_KEK_RETIRED']) {
    const err = t.throws(() => loadConfig({ [variable]: 'zz-secret-zz' })) as Error
    t.match(err.message, new RegExp(`^${variable}: `))
    t.notMatch(err.message, /zz-secret-zz/)
  }
})

t.test('tooling variables do not count as unknown', async (t) => {
  t.doesNotThrow(() =>
    loadConfig({ GATEHOUSE_TEST_DATABASE_URL: 'postgres://x', GATEHOUSE_BENCH_SECONDS: '3' }),
  )
})

t.test(
  'DID documents: a size limit, and a cache bounded in bytes, both within range',
  async (t) => {
    const { identity } = loadConfig({}).config
    t.equal(identity.didDocMaxBytes, 32 * 1024)
    t.equal(identity.didCacheMaxBytes, 8 * 1024 * 1024)
    const set = loadConfig({
      GATEHOUSE_DID_DOC_MAX_BYTES: '4096',
      GATEHOUSE_DID_CACHE_MAX_BYTES: '2097152',
    }).config.identity
    t.same([set.didDocMaxBytes, set.didCacheMaxBytes], [4096, 2097152])
    for (const [variable, value] of [
      ['GATEHOUSE_DID_DOC_MAX_BYTES', '512'],
      ['GATEHOUSE_DID_DOC_MAX_BYTES', String(2 * 1024 * 1024)],
      ['GATEHOUSE_DID_CACHE_MAX_BYTES', '65536'],
      ['GATEHOUSE_DID_CACHE_MAX_BYTES', String(2 * 1024 * 1024 * 1024)],
    ] as const) {
      const err = t.throws(() => loadConfig({ [variable]: value })) as ConfigError
      t.equal(err.variable, variable, `${variable}=${value} is out of range`)
    }
  },
)

t.test("notify limits: registrations per space, and one space's share of the relay", async (t) => {
  const defaults = loadConfig({}).config.notify
  t.equal(defaults.registrationsPerSpaceMax, 100)
  t.equal(defaults.relaySpaceConcurrency, 8, 'a quarter of the 32 delivery slots')
  const share = (env: Record<string, string>) => loadConfig(env).config.notify.relaySpaceConcurrency
  t.equal(share({ GATEHOUSE_RELAY_CONCURRENCY: '64' }), 16, 'the quarter follows the slots')
  t.equal(share({ GATEHOUSE_RELAY_CONCURRENCY: '2' }), 1, 'at least one')
  t.equal(share({ GATEHOUSE_RELAY_SPACE_CONCURRENCY: '12' }), 12)
  t.equal(
    share({ GATEHOUSE_RELAY_CONCURRENCY: '4', GATEHOUSE_RELAY_SPACE_CONCURRENCY: '12' }),
    4,
    'never more than all the slots',
  )
  t.throws(() => loadConfig({ GATEHOUSE_REGISTRATIONS_PER_SPACE_MAX: '0' }), /PER_SPACE_MAX/)
  t.throws(() => loadConfig({ GATEHOUSE_RELAY_SPACE_CONCURRENCY: '0' }), /SPACE_CONCURRENCY/)
})

t.test('units are converted once, where the setting is declared', async (t) => {
  const c = loadConfig({
    GATEHOUSE_DID_CACHE_TTL_SEC: '2',
    GATEHOUSE_OPLOG_RETENTION_DAYS: '3',
    GATEHOUSE_SERVICE_AUTH_REUSE_SEC: '4',
  }).config
  t.equal(c.identity.didCacheTtlMs, 2000)
  t.equal(c.members.oplogRetentionMs, 3 * 86_400_000)
  t.equal(c.auth.outboundTokenReuseSec, 4, 'a setting Config holds in seconds stays in seconds')
})

t.test('lists: authorities, did:web hosts, retired KEKs', async (t) => {
  const { config, secrets } = loadConfig({
    GATEHOUSE_AUTHORITY_CREATORS: 'did:plc:aaa,did:web:b.example',
    GATEHOUSE_DID_WEB_HOSTS: 'forum.example.com,localhost%3A8080',
    GATEHOUSE_KEK_RETIRED: `${'a'.repeat(64)},${'b'.repeat(64)}`,
  })
  t.same(config.authorities.creators, ['did:plc:aaa', 'did:web:b.example'])
  t.same(config.authorities.didWebHosts, ['forum.example.com', 'localhost%3A8080'])
  t.same(secrets.retiredKekHex, ['a'.repeat(64), 'b'.repeat(64)])
  t.equal(loadConfig({ GATEHOUSE_AUTHORITY_CREATORS: '*' }).config.authorities.creators, '*')
  t.same(loadConfig({}).config.authorities, { didWebHosts: [], creators: [] })
  t.throws(() => loadConfig({ GATEHOUSE_AUTHORITY_CREATORS: 'bob' }), /^GATEHOUSE_AUTHORITY_/)
  t.throws(() => loadConfig({ GATEHOUSE_DID_WEB_HOSTS: 'a.example,' }), /^GATEHOUSE_DID_WEB_/)
})

/**
 * Moving an authority between hosts (`gatehouse authority export|import`, docs/operating.md): a
 * did:plc with spaces, members, an oplog, invites, a ban, managers and an audit log is exported
 * from a Gatehouse on SQLite and imported into one on PostgreSQL (the PostgreSQL leg; SQLite again
 * in the SQLite leg), through the real CLI; a wrong passphrase and a damaged file write nothing;
 * the old host's `transfer` and the new host's `activate` hand over the directory entry, and both
 * hosts' listMemberOps answers agree. Plus the sealed file's refusals, and the payload's checks
 * (exported from PostgreSQL into SQLite in the PostgreSQL leg).
 */
import { randomUUID } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { OPERATOR } from '../../src/audit/audit-log.js'
import { TABLES } from '../../src/authorities/export.js'
import { Keypair } from '../../src/crypto/keypair.js'
import {
  FORMAT_VERSION,
  MAGIC,
  openExport,
  sealExport,
  SealedFileError,
} from '../../src/authorities/sealed-file.js'
import type { CreateSpaceInput } from '../../src/spaces/space-service.js'
import { TestArbiter } from '../_helpers/arbiter.js'
import { createTestDatabase } from '../_helpers/db.js'
import { PlcDirectory } from '../_helpers/identities.js'
import { freePort, runGatehouse } from '../_helpers/process.js'

const PASSPHRASE = 'correct horse battery staple'
const FAST_KDF = { N: 2 ** 14, r: 8, p: 1 }

async function host(t: Tap, plc: PlcDirectory, sqlite: boolean) {
  const port = await freePort()
  const database = sqlite ? await createTestDatabase(`${t.name}-a`, { kind: 'sqlite' }) : undefined
  if (database) t.teardown(() => database.cleanup())
  const env = {
    GATEHOUSE_PLC_URL: plc.url,
    GATEHOUSE_PUBLIC_URL: `http://localhost:${port}`,
  }
  const a = await TestArbiter.create(t, { port, env, database })
  /** The real CLI against this host's database and data dir. */
  const cli = async (args: string[], extra: Record<string, string> = {}) => {
    const run = runGatehouse(args, {
      ...env,
      ...extra,
      GATEHOUSE_DATA_DIR: a.dataDir,
      GATEHOUSE_DATABASE_URL: a.database.url,
      GATEHOUSE_ALLOW_PRIVATE_NETWORK: 'true',
      GATEHOUSE_LOG_LEVEL: 'silent',
    })
    const { code } = await run.exited
    return { code, stdout: run.stdout.join('\n'), stderr: run.stderr }
  }
  return { a, cli, url: `http://localhost:${port}` }
}

type Tap = Parameters<typeof TestArbiter.create>[0] & { name: string }

/** An authority with two spaces (one deleted), members changed over time, and admission state. */
async function populate(a: TestArbiter) {
  const view = await a.ctx.lifecycle.createPlc({ owner: 'did:web:owner.example' }, OPERATOR)
  const did = view.did
  const policy: Pick<CreateSpaceInput, 'readPolicy' | 'writePolicy' | 'appAccess'> = {
    readPolicy: { kind: 'member-list' },
    writePolicy: { kind: 'member-list' },
    appAccess: { kind: 'allowList', allowed: ['https://app.example/client-metadata.json'] },
  }
  const space = await a.ctx.spaces.create({
    authority: did,
    spaceType: 'com.example.forum',
    skey: 'main',
    ...policy,
  })
  await a.ctx.spaces.setRosterVisibility(space.uri, 'public', OPERATOR)
  for (let i = 0; i < 30; i++) {
    await a.ctx.manager.putMember(
      space,
      `did:web:m${i}.example`,
      { read: true, write: i % 3 === 0 },
      OPERATOR,
    )
    a.clock.advance(1000)
  }
  await a.ctx.manager.removeMember(space, 'did:web:m4.example', OPERATOR)
  await a.ctx.manager.putMember(space, 'did:web:m5.example', { read: true, write: true }, OPERATOR)
  await a.ctx.admission.createInvite(space, { write: false, maxUses: 3 }, OPERATOR)
  await a.ctx.admission.ban(
    space,
    'did:web:troll.example',
    { reason: 'spam', expiresAt: null },
    OPERATOR,
  )
  await a.ctx.managers.change(did, 'did:web:helper.example', 'admin', 'operator', OPERATOR)
  const gone = await a.ctx.spaces.create({
    authority: did,
    spaceType: 'com.example.forum',
    skey: 'old',
    ...policy,
  })
  await a.ctx.manager.putMember(gone, 'did:web:m1.example', { read: true, write: false }, OPERATOR)
  await a.ctx.manager.deleteSpace(gone.uri, OPERATOR)
  return { did, space: space.uri, gone: gone.uri }
}

/** The oplog answer anyone may read for a public roster (or the refusal). */
async function memberOps(url: string, space: string) {
  const res = await fetch(
    `${url}/xrpc/dev.gatehouse.simplespace.listMemberOps?space=${encodeURIComponent(space)}&limit=1000`,
  )
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

/** Whether `did` left anything in `a`'s database. */
async function holds(a: TestArbiter, did: string, space: string) {
  const [keys, spaces, members, audit, managers] = await Promise.all([
    a.ctx.db.prisma.authorityKey.count({ where: { authorityDid: did } }),
    a.ctx.db.prisma.space.count({ where: { authorityDid: did } }),
    a.ctx.db.hot.query<{ n: number | bigint }>(
      'SELECT COUNT(*) AS n FROM space_member WHERE space = ?',
      [space],
    ),
    a.ctx.audit.query({ authority: did, limit: 10 }),
    a.ctx.managers.list(did),
  ])
  return {
    authority: !!(await a.ctx.authorities.record(did)),
    keys,
    spaces,
    members: Number(members[0]!.n),
    audit: audit.length,
    managers: managers.length,
  }
}

// Ten CLI runs, each a process start and a 128 MiB scrypt: beside other suites on a loaded 2-core
// CI machine this file has taken over tap's 120 s per file.
t.setTimeout(360_000)

const NOTHING = { authority: false, keys: 0, spaces: 0, members: 0, audit: 0, managers: 0 }

t.test(
  'export from SQLite, import into PostgreSQL (SQLite in the SQLite leg), transfer, activate',
  async (t) => {
    const plc = await PlcDirectory.start(t)
    const A = await host(t, plc, true)
    const B = await host(t, plc, false)
    t.equal(A.a.database.kind, 'sqlite')
    t.comment(`the new host runs on ${B.a.database.kind}`)
    const { did, space, gone } = await populate(A.a)
    const dir = A.a.dataDir
    const secretFile = join(dir, 'passphrase')
    writeFileSync(secretFile, `${PASSPHRASE}\n`)
    const out = join(dir, 'forum.export')

    const exported = await A.cli([
      'authority',
      'export',
      did,
      '--out',
      out,
      '--passphrase-file',
      secretFile,
    ])
    t.equal(exported.code, 0, exported.stderr.join('\n'))
    const summary = JSON.parse(exported.stdout) as { counts: Record<string, number> }
    t.match(summary.counts, { space: 2, space_member: 29, authority_key: 2, invite: 1, ban: 1 })
    const file = readFileSync(out)
    t.ok(file.subarray(0, MAGIC.length).equals(MAGIC), 'a sealed export')
    t.notOk(file.includes(Buffer.from('did:web:m1.example')), 'nothing readable in the file')
    const again = await A.cli([
      'authority',
      'export',
      did,
      '--out',
      out,
      '--passphrase-file',
      secretFile,
    ])
    t.equal(again.code, 2, 'an existing file is not overwritten')
    t.match(again.stderr.join('\n'), /exists/)
    const before = await memberOps(A.url, space)
    t.equal(before.status, 200)
    const auditA = await A.a.ctx.audit.verify(did)
    t.match(auditA, { ok: true })

    // A wrong passphrase, a truncated file and a flipped byte: one clear line, nothing written.
    const wrong = join(dir, 'wrong')
    writeFileSync(wrong, 'not the passphrase at all\n')
    const refused = await B.cli(['authority', 'import', out, '--passphrase-file', wrong])
    t.equal(refused.code, 2)
    t.same(refused.stderr, ['gatehouse: WrongPassphrase: wrong passphrase for this export'])
    const truncated = join(dir, 'truncated.export')
    writeFileSync(truncated, file.subarray(0, file.length - 200))
    const cut = await B.cli(['authority', 'import', truncated, '--passphrase-file', secretFile])
    t.equal(cut.code, 2)
    t.same(cut.stderr, ['gatehouse: ExportDamaged: the export is truncated or altered'])
    const headless = join(dir, 'headless.export')
    writeFileSync(headless, file.subarray(0, 40))
    const short = await B.cli(['authority', 'import', headless, '--passphrase-file', secretFile])
    t.same(short.stderr, [
      'gatehouse: ExportDamaged: the export is truncated (its header is incomplete)',
    ])
    t.same(await holds(B.a, did, space), NOTHING, 'the new host holds nothing of it')

    const none = await B.cli(['authority', 'import', out])
    t.same(none.stderr, [
      'gatehouse: no passphrase: give --passphrase-file FILE, GATEHOUSE_EXPORT_PASSPHRASE, or pipe it to stdin',
    ])
    const imported = await B.cli(['authority', 'import', out], {
      GATEHOUSE_EXPORT_PASSPHRASE: PASSPHRASE,
    })
    t.equal(imported.code, 0, imported.stderr.join('\n'))
    const view = JSON.parse(imported.stdout) as { status: string; keys: { publicKey: string }[] }
    t.equal(view.status, 'pending', 'imported pending')
    const keysA = await A.a.ctx.authorities.keys(did)
    t.same(
      view.keys.map((k) => k.publicKey),
      keysA.map((k) => k.publicKey),
      'the same keys',
    )
    const rows = await B.a.ctx.db.prisma.authorityKey.findMany({ where: { authorityDid: did } })
    t.same(
      [...new Set(rows.map((r) => r.kekId))],
      [B.a.ctx.vault.kekId],
      "re-sealed under the new host's KEK",
    )
    t.not(B.a.ctx.vault.kekId, A.a.ctx.vault.kekId)
    t.same(
      (await B.a.ctx.authorities.key(did, 'rotation'))?.did(),
      (await A.a.ctx.authorities.key(did, 'rotation'))?.did(),
    )
    const auditB = await B.a.ctx.audit.verify(did)
    t.match(auditB, { ok: true, entries: (auditA as { entries: number }).entries + 1 })
    const [last] = await B.a.ctx.audit.query({ authority: did, limit: 1 })
    t.match(last, { action: 'authority.import', actor: 'operator', door: 'cli' })
    t.match(last!.after, A.url, 'the import names the host it came from')
    t.same(await B.a.ctx.managers.list(did), await A.a.ctx.managers.list(did))
    t.equal((await B.a.ctx.spaces.lookup(gone)).state, 'deleted', 'a deleted space stays deleted')
    t.match(
      await memberOps(B.url, space),
      { status: 401, body: { error: 'AuthenticationRequired' } },
      'pending: the new host does not answer for it yet (to anonymous readers: no such roster)',
    )
    const twice = await B.cli(['authority', 'import', out, '--passphrase-file', secretFile])
    t.equal(twice.code, 2)
    t.match(twice.stderr.join('\n'), /AuthorityExists/)

    // The handover: the old host lets go, the new one points the directory at itself.
    const transferred = await A.cli(['authority', 'transfer', did])
    t.equal(transferred.code, 0, transferred.stderr.join('\n'))
    // Other processes see a status change within GATEHOUSE_CONFIG_CACHE_MS (1 s).
    A.a.clock.advance(1_001)
    t.match(
      await memberOps(A.url, space),
      { status: 401, body: { error: 'AuthenticationRequired' } },
      'the old host stops answering',
    )
    const activated = await B.cli(['authority', 'activate', did])
    t.equal(activated.code, 0, activated.stderr.join('\n'))
    t.equal((JSON.parse(activated.stdout) as { status: string }).status, 'active')
    const doc = (await (await fetch(`${plc.url}/${did}`)).json()) as {
      service: { id: string; serviceEndpoint: string }[]
      verificationMethod: { id: string; publicKeyMultibase: string }[]
    }
    t.same(
      doc.service.find((s) => s.id === '#atproto_space_host')?.serviceEndpoint,
      B.url,
      '#atproto_space_host names the new host',
    )
    B.a.clock.advance(1_001)
    const after = await memberOps(B.url, space)
    t.equal(after.status, 200)
    t.same(after.body, before.body, 'members, oplog revs, digest and count identical on both hosts')
    t.equal((after.body.ops as unknown[]).length, 32)
    t.match(await B.a.ctx.audit.verify(did), { ok: true })
  },
)

t.test('the payload is checked before anything is written (PostgreSQL to SQLite)', async (t) => {
  const plc = await PlcDirectory.start(t)
  // The other way round: in the PostgreSQL leg the snapshot is PostgreSQL's repeatable read.
  const A = await host(t, plc, false)
  const B = await host(t, plc, true)
  const { did, space } = await populate(A.a)
  const { file } = await A.a.ctx.authorityExport.export(did, PASSPHRASE, OPERATOR)
  const lines = openExport(file, PASSPHRASE, 1 << 30)
    .toString('utf8')
    .split('\n')
  /** The export with `change` applied to its JSON lines, sealed again. */
  const altered = (change: (l: string[]) => string[]) =>
    sealExport(Buffer.from(change([...lines]).join('\n')), PASSPHRASE, FAST_KDF)
  const refusals: [string, string[], RegExp][] = [
    [
      'a member added without its oplog',
      lines.map((l) =>
        l.includes('"t":"space_member"') && l.includes('m7.example')
          ? l.replace('m7.example', 'intruder.example')
          : l,
      ),
      /member digest of .* does not match/,
    ],
    [
      'an audit entry rewritten',
      lines.map((l) =>
        l.includes('"t":"audit_entry"') && l.includes('"seq":3,')
          ? l.replace(/"action":"[^"]+"/, '"action":"space.create"')
          : l,
      ),
      /audit log breaks at entry/,
    ],
    [
      "a row of another authority's",
      lines.map((l) =>
        l.includes('"t":"authority_manager"')
          ? l.replace(did, 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa')
          : l,
      ),
      /belongs to another authority/,
    ],
    [
      'a key that is not the private half of its public key',
      lines.map((l) =>
        l.includes('"t":"authority_key"') && l.includes('"purpose":"atproto"')
          ? l.replace(
              /"publicKey":"[^"]+"/,
              '"publicKey":"did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme"',
            )
          : l,
      ),
      /does not match its public key/,
    ],
    ['a line that is not JSON', [...lines.slice(0, 3), '{"t":', ...lines.slice(3)], /not JSON/],
    ['an unknown table', [...lines, '{"t":"manager_session","r":{}}'], /unknown table/],
    [
      'a column the table does not have',
      lines.map((l) => (l.includes('"t":"ban"') ? l.replace('"reason"', '"extra":1,"reason"') : l)),
      /ban/,
    ],
  ]
  for (const [what, changed, expected] of refusals) {
    await t.rejects(
      B.a.ctx.authorityExport.import(
        altered(() => changed),
        PASSPHRASE,
        OPERATOR,
      ),
      { name: 'AuthorityExportError', message: expected },
      what,
    )
  }
  t.same(await holds(B.a, did, space), NOTHING, 'nothing written by any of them')
  await B.a.ctx.authorityExport.import(
    altered((l) => l),
    PASSPHRASE,
    OPERATOR,
  )
  t.equal(
    (await B.a.ctx.authorities.record(did))?.status,
    'pending',
    'the unaltered export imports',
  )
})

/** A sealed export of a bare authority `did` holding one `atproto` key, as another host would make. */
function bareExport(did: string, key: Keypair, keyId: string = randomUUID()): Buffer {
  const at = new Date().toISOString()
  const lines = [
    {
      format: 'gatehouse-authority',
      version: 1,
      did,
      exportedAt: at,
      from: { did: 'did:web:old.example', url: 'https://old.example' },
      counts: { authority: 1, authority_key: 1 },
      digests: {},
    },
    {
      t: 'authority',
      r: {
        did,
        status: 'active',
        origin: 'created',
        handle: null,
        ownerRotationKey: null,
        pdsService: false,
        createdAt: at,
        updatedAt: at,
      },
    },
    {
      t: 'authority_key',
      r: {
        id: keyId,
        purpose: 'atproto',
        curve: 'secp256k1',
        publicKey: key.did(),
        secret: Buffer.from(key.exportSecretKey()).toString('base64'),
        status: 'active',
        createdAt: at,
        retiredAt: null,
      },
    },
  ]
  const payload = Buffer.from(lines.map((l) => JSON.stringify(l)).join('\n'))
  return sealExport(payload, PASSPHRASE, FAST_KDF)
}

t.test("an export naming this host's own DID is refused: its did.json stays its own", async (t) => {
  const port = await freePort()
  const url = `http://localhost:${port}`
  const B = await TestArbiter.create(t, {
    port,
    env: { GATEHOUSE_PUBLIC_URL: url, GATEHOUSE_DID_WEB_HOSTS: `localhost%3A${port}` },
  })
  const own = B.ctx.cfg.service.did
  t.equal(own, `did:web:localhost%3A${port}`)
  const key = Keypair.generate('secp256k1')
  await t.rejects(B.ctx.authorityExport.import(bareExport(own, key), PASSPHRASE, OPERATOR), {
    code: 'DidNotServed',
  })
  t.notOk(await B.ctx.authorities.record(own), 'nothing imported')
  const served = await (await fetch(`${url}/.well-known/did.json`)).text()
  t.notOk(served.includes(key.did().slice('did:key:'.length)), "the host's own document")
  await t.rejects(
    B.ctx.authorityExport.import(bareExport('not a did', key), PASSPHRASE, OPERATOR),
    { name: 'AuthorityExportError', message: /not a DID/ },
  )
})

t.test("an imported key cannot take the id of this host's own OAuth client key", async (t) => {
  const B = await TestArbiter.create(t)
  const own = B.ctx.cfg.service.did
  const file = bareExport(
    'did:web:forum.example',
    Keypair.generate('secp256k1'),
    `oauth_client:${own}`,
  )
  await t.rejects(B.ctx.authorityExport.import(file, PASSPHRASE, OPERATOR), {
    name: 'AuthorityExportError',
    message: /id/,
  })
  t.notOk(await B.ctx.authorities.record('did:web:forum.example'), 'nothing imported')
  const key = await B.ctx.authorities.serviceKey(own, 'oauth_client', 'p256')
  t.equal(key?.curve, 'p256', 'the host still makes its manager-login key')
})

t.test(
  'a row colliding with one of this host is refused mid-transaction: nothing written',
  async (t) => {
    const B = await TestArbiter.create(t)
    await B.ctx.lifecycle.adopt({ did: 'did:web:theirs.example' }, OPERATOR)
    const [held] = await B.ctx.authorities.keys('did:web:theirs.example')
    const file = bareExport('did:web:forum.example', Keypair.generate('secp256k1'), held!.id)
    await t.rejects(B.ctx.authorityExport.import(file, PASSPHRASE, OPERATOR), {
      code: 'AuthorityExists',
      message: /a row of the export is already here/,
    })
    t.notOk(
      await B.ctx.authorities.record('did:web:forum.example'),
      'the authority row rolled back',
    )
    t.same(await B.ctx.authorities.keys('did:web:theirs.example'), [held], 'the held key untouched')
  },
)

t.test('an export refused for its passphrase is not recorded as made', async (t) => {
  const A = await TestArbiter.create(t, { env: { GATEHOUSE_DID_WEB_HOSTS: 'forum.example' } })
  const { did } = await A.ctx.lifecycle.createWeb({ did: 'did:web:forum.example' }, OPERATOR)
  await t.rejects(A.ctx.authorityExport.export(did, 'too short', OPERATOR), {
    code: 'WrongPassphrase',
    message: /at least 12 characters/,
  })
  const actions = (await A.ctx.audit.query({ authority: did, limit: 10 })).map((e) => e.action)
  t.same(actions, ['authority.create'], 'no authority.export entry')
})

t.test('the sealed file: refusals before any costly work, and tampering found', async (t) => {
  const payload = Buffer.from('{"hello":"world"}\n'.repeat(100))
  const file = sealExport(payload, PASSPHRASE, FAST_KDF)
  t.same(openExport(file, PASSPHRASE, 1 << 20), payload, 'round trip')
  t.throws(() => sealExport(payload, 'short'), /at least 12 characters/)
  t.throws(() => openExport(file, PASSPHRASE, 100), {
    code: 'ExportDamaged',
    message: /larger than 100 bytes/,
  })

  const headerLength = file.readUInt32BE(MAGIC.length)
  const start = MAGIC.length + 4
  const header = JSON.parse(file.subarray(start, start + headerLength).toString()) as Record<
    string,
    any
  >
  const withHeader = (h: object) => {
    const bytes = Buffer.from(JSON.stringify(h))
    const length = Buffer.alloc(4)
    length.writeUInt32BE(bytes.length)
    return Buffer.concat([MAGIC, length, bytes, file.subarray(start + headerLength)])
  }
  const code = (f: Buffer) => {
    try {
      openExport(f, PASSPHRASE, 1 << 20)
      return 'opened'
    } catch (err) {
      return `${(err as SealedFileError).code}: ${(err as Error).message}`
    }
  }
  t.match(
    code(withHeader({ ...header, version: FORMAT_VERSION + 1 })),
    /^UnsupportedExport: export format version 2/,
  )
  const startedAt = performance.now()
  t.match(
    code(withHeader({ ...header, kdf: { ...header.kdf, N: 2 ** 30 } })),
    /^UnsupportedExport: .*kdf\.N/,
  )
  t.match(
    code(withHeader({ ...header, kdf: { ...header.kdf, N: 2 ** 18, r: 16 } })),
    /^UnsupportedExport: .*memory/,
  )
  t.match(code(withHeader({ ...header, kdf: { ...header.kdf, p: 64 } })), /^UnsupportedExport/)
  t.match(
    code(withHeader({ ...header, kdf: { ...header.kdf, name: 'pbkdf2' } })),
    /^UnsupportedExport/,
  )
  t.match(code(withHeader({ ...header, cipher: 'aes-128-cbc' })), /^UnsupportedExport/)
  t.ok(performance.now() - startedAt < 1000, 'refused without deriving a key')
  t.match(code(Buffer.from('PK\x03\x04 a zip file, say')), /^NotAnExport/)
  const big = Buffer.alloc(MAGIC.length + 4)
  MAGIC.copy(big)
  big.writeUInt32BE(1 << 30, MAGIC.length)
  t.match(code(big), /^ExportDamaged: .*header is incomplete/)

  t.match(
    code(withHeader({ ...header, kdf: { ...header.kdf, r: 9 } })),
    /^WrongPassphrase/,
    'other KDF parameters derive another key',
  )
  t.match(
    code(withHeader({ ...header, nonce: Buffer.alloc(12).toString('base64') })),
    /^ExportDamaged: the export is truncated or altered/,
    'the header is authenticated',
  )
  const flipped = Buffer.from(file)
  flipped[flipped.length - 30]! ^= 1
  t.match(code(flipped), /^ExportDamaged: the export is truncated or altered/)
  t.match(code(file.subarray(0, file.length - 1)), /^ExportDamaged/)
})

t.test('every column of every table that moves is carried', async (t) => {
  const schema = readFileSync('prisma/schema.prisma', 'utf8')
  for (const spec of TABLES) {
    const block = schema.split(/\nmodel /).find((b) => b.includes(`@@map("${spec.table}")`))
    t.ok(block, spec.table)
    const fields = block!
      .split('\n')
      .slice(1)
      .map((l) => l.trim())
      .filter((l) => /^[a-z]\w*\s/.test(l))
      .map((l) => l.split(/\s+/)[0])
    t.same(Object.keys(spec.columns).sort(), fields.sort(), `${spec.table}: every column`)
  }
})

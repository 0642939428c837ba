import { sha256 } from '@noble/hashes/sha2.js'
import { z } from 'zod'
import { verifyChain, type Actor, type AuditLog } from '../audit/audit-log.js'
import type { Clock } from '../clock.js'
import type { Db, Tx } from '../db/client.js'
import { UniqueViolationError } from '../db/errors.js'
import { forEachChunk, insertRows, type SqlValue } from '../db/hot-sql.js'
import { LtHash } from '../crypto/lthash.js'
import { Keypair } from '../crypto/keypair.js'
import { isDid } from '../lexicon/formats.js'
import { memberElement } from '../members/member-list.js'
import type { AuthorityService, HeldKey } from './authority-service.js'
import { AuthorityLifecycleError } from './lifecycle.js'
import { assertPassphrase, openExport, sealExport } from './sealed-file.js'

/**
 * Moving an authority to another Gatehouse (docs/operating.md, "Moving an authority to another
 * host"): `export` reads everything that belongs to it in one snapshot and seals it under a
 * passphrase; `import` checks all of it (schema, keys against their public halves, member digests,
 * the audit chain) before writing anything, then writes it in one transaction, pending.
 */

/** Column kinds: string, int, boolean, date, bytes; `?` nullable. */
type Kind = 's' | 's?' | 'i' | 'i?' | 'b' | 'd' | 'd?' | 'x' | 'x?'

interface TableSpec {
  table: string
  /** The Prisma model, for tables outside HOT_TABLES; hot ones are read and written in SQL. */
  model?: string
  /** Which rows belong to the authority: its DID column, one of its spaces, one of its invites. */
  scope: 'authority' | 'space' | 'invite'
  /** Only rows not yet expired: what is past its expiry has no effect anywhere. */
  live?: true
  columns: Record<string, Kind>
}

/**
 * What moves, in the order it is written (docs/operating.md lists what deliberately does not).
 * The authority row and its keys are handled apart: the status and the sealing change on the way.
 */
export const TABLES: TableSpec[] = [
  {
    table: 'space',
    model: 'space',
    scope: 'authority',
    columns: {
      uri: 's',
      authorityDid: 's',
      spaceType: 's',
      skey: 's',
      readPolicy: 's',
      readManagingApp: 's?',
      writePolicy: 's',
      writeManagingApp: 's?',
      appAccess: 's',
      credentialTtlSec: 'i',
      dpopCredentialTtlSec: 'i',
      rosterVisibility: 's',
      joinRequests: 'b',
      createdAt: 'd',
      updatedAt: 'd',
      deletedAt: 'd?',
    },
  },
  {
    table: 'space_app_rule',
    model: 'spaceAppRule',
    scope: 'space',
    columns: { space: 's', clientId: 's' },
  },
  {
    table: 'space_member',
    scope: 'space',
    columns: { space: 's', did: 's', read: 'b', write: 'b', updatedAt: 'd' },
  },
  {
    table: 'member_op',
    scope: 'space',
    columns: { space: 's', rev: 's', op: 's', did: 's', read: 'b', write: 'b', createdAt: 'd' },
  },
  {
    table: 'member_state',
    scope: 'space',
    columns: {
      space: 's',
      rev: 's',
      lthash: 'x',
      count: 'i',
      compactedThrough: 's?',
      updatedAt: 'd',
    },
  },
  {
    table: 'space_writer',
    scope: 'space',
    columns: { space: 's', did: 's', repoRev: 's', hash: 'x', spaceRev: 's', updatedAt: 'd' },
  },
  {
    table: 'issued_credential',
    scope: 'space',
    live: true,
    columns: {
      space: 's',
      jti: 's',
      userDid: 's',
      clientId: 's?',
      issuedAt: 'd',
      expiresAt: 'd',
      revokedAt: 'd?',
    },
  },
  {
    table: 'revoked_credential',
    model: 'revokedCredential',
    scope: 'space',
    live: true,
    columns: { space: 's', jti: 's', expiresAt: 'd', createdAt: 'd' },
  },
  {
    table: 'notify_registration',
    model: 'notifyRegistration',
    scope: 'space',
    columns: {
      space: 's',
      service: 's',
      endpoint: 's',
      expiresAt: 'd',
      createdAt: 'd',
      cursor: 's?',
      attempts: 'i',
      nextAttemptAt: 'd',
      lastError: 's?',
      registeredBy: 's?',
    },
  },
  {
    table: 'authority_manager',
    scope: 'authority',
    columns: { authorityDid: 's', did: 's', role: 's', createdAt: 'd' },
  },
  {
    table: 'api_token',
    model: 'apiToken',
    scope: 'authority',
    columns: {
      id: 's',
      authorityDid: 's',
      createdBy: 's',
      parentId: 's?',
      name: 's',
      role: 's',
      space: 's?',
      hash: 's',
      createdAt: 'd',
      expiresAt: 'd?',
      revokedAt: 'd?',
      lastUsedAt: 'd?',
    },
  },
  {
    table: 'invite',
    model: 'invite',
    scope: 'space',
    columns: {
      id: 's',
      space: 's',
      hash: 's',
      read: 'b',
      write: 'b',
      maxUses: 'i?',
      uses: 'i',
      expiresAt: 'd',
      createdBy: 's',
      createdAt: 'd',
      revokedAt: 'd?',
    },
  },
  {
    table: 'invite_use',
    model: 'inviteUse',
    scope: 'invite',
    columns: { inviteId: 's', did: 's', at: 'd' },
  },
  {
    table: 'join_request',
    model: 'joinRequest',
    scope: 'space',
    columns: {
      id: 's',
      space: 's',
      did: 's',
      message: 's?',
      status: 's',
      pendingDid: 's?',
      read: 'b',
      write: 'b',
      reason: 's?',
      decidedBy: 's?',
      createdAt: 'd',
      decidedAt: 'd?',
    },
  },
  {
    table: 'ban',
    model: 'ban',
    scope: 'space',
    columns: {
      space: 's',
      did: 's',
      reason: 's?',
      expiresAt: 'd?',
      createdBy: 's',
      createdAt: 'd',
    },
  },
  {
    table: 'audit_entry',
    scope: 'authority',
    columns: {
      authorityDid: 's',
      seq: 'i',
      at: 'd',
      actor: 's',
      door: 's',
      action: 's',
      space: 's?',
      subject: 's?',
      before: 's?',
      after: 's?',
      outcome: 's',
      reason: 's?',
      prevHash: 'x',
      hash: 'x',
    },
  },
  { table: 'audit_head', scope: 'authority', columns: { authorityDid: 's', seq: 'i', hash: 'x' } },
]

const AUTHORITY: TableSpec = {
  table: 'authority',
  model: 'authority',
  scope: 'authority',
  columns: {
    did: 's',
    status: 's',
    origin: 's',
    handle: 's?',
    ownerRotationKey: 's?',
    pdsService: 'b',
    createdAt: 'd',
    updatedAt: 'd',
  },
}

const KEY: TableSpec = {
  table: 'authority_key',
  scope: 'authority',
  columns: {
    id: 's',
    purpose: 's',
    curve: 's',
    publicKey: 's',
    secret: 'x',
    status: 's',
    createdAt: 'd',
    retiredAt: 'd?',
  },
}

/** A file read is refused past this size, and its payload past the next, before parsing. */
export const MAX_EXPORT_FILE_BYTES = 256 * 1024 * 1024
const MAX_PAYLOAD_BYTES = 1024 * 1024 * 1024
const MAX_LINE_BYTES = 1024 * 1024
/** The whole-authority transactions may take longer than a request's. */
const TRANSACTION_MS = 10 * 60_000
const FORMAT = 'gatehouse-authority'

const snake = (field: string) => field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)

type Row = Record<string, unknown>

const KINDS: Record<Kind, z.ZodType> = (() => {
  const s = z.string().max(MAX_LINE_BYTES)
  const i = z.number().int()
  const b = z.boolean()
  const d = z.iso.datetime().transform((v) => new Date(v))
  const x = z
    .string()
    .max(16_384)
    .regex(/^[A-Za-z0-9+/]*=*$/)
    .transform((v) => Buffer.from(v, 'base64'))
  return {
    s,
    's?': s.nullable(),
    i,
    'i?': i.nullable(),
    b,
    d,
    'd?': d.nullable(),
    x,
    'x?': x.nullable(),
  }
})()

const rowSchema = (spec: TableSpec) =>
  z.object(Object.fromEntries(Object.entries(spec.columns).map(([f, k]) => [f, KINDS[k]]))).strict()

const SPECS = new Map([AUTHORITY, KEY, ...TABLES].map((s) => [s.table, s]))
const SCHEMAS = new Map([...SPECS].map(([t, s]) => [t, rowSchema(s)]))

const MANIFEST = z
  .object({
    format: z.literal(FORMAT),
    version: z.literal(1),
    did: z.string().max(2048),
    exportedAt: z.iso.datetime(),
    from: z.object({ did: z.string().max(2048), url: z.string().max(2048) }).strict(),
    counts: z.record(z.string(), z.number().int().min(0)),
    /** Per space: the member list's digest (SHA-256 of its LtHash state), hex. */
    digests: z.record(z.string(), z.string().regex(/^[0-9a-f]{64}$/)),
  })
  .strict()

/** A row as JSON: dates ISO 8601, bytes base64. */
function encodeRow(spec: TableSpec, row: Row): Row {
  const out: Row = {}
  for (const [field, kind] of Object.entries(spec.columns)) {
    const v = row[field]
    out[field] =
      v === null || v === undefined
        ? null
        : kind.startsWith('d')
          ? (v as Date).toISOString()
          : kind.startsWith('x')
            ? Buffer.from(v as Uint8Array).toString('base64')
            : kind.startsWith('i')
              ? Number(v)
              : v
  }
  return out
}

/** Prisma's model API by name, for the tables outside HOT_TABLES (each spec names its model). */
type Delegate = {
  findMany(args: object): Promise<Row[]>
  createMany(args: { data: Row[] }): Promise<unknown>
}
const model = (tx: Tx, name: string) => (tx as unknown as Record<string, Delegate>)[name]!

export class AuthorityExportError extends Error {
  override name = 'AuthorityExportError'
}

export interface ExportDeps {
  db: Db
  audit: AuditLog
  authorities: AuthorityService
  clock: Clock
  /** Who this host is, written into the export and the importing host's audit entry. */
  from: { did: string; url: string }
}

export interface ExportResult {
  did: string
  file: Buffer
  counts: Record<string, number>
}

export class AuthorityExport {
  constructor(private readonly deps: ExportDeps) {}

  /**
   * The authority, sealed under `passphrase`. The export is recorded in its audit log first, so
   * the log it carries says it was exported. Pending keys (a change the directory never confirmed)
   * must be settled first.
   */
  async export(did: string, passphrase: string, by: Actor): Promise<ExportResult> {
    // Before the audit entry: a refused passphrase must not leave the log saying it was exported.
    assertPassphrase(passphrase)
    const record = await this.deps.authorities.record(did)
    if (!record) throw new AuthorityLifecycleError('AuthorityNotFound', `${did} is not held here`)
    if (record.status !== 'active' && record.status !== 'deactivated')
      throw new AuthorityLifecycleError(
        'InvalidAuthorityState',
        `${did} is ${record.status}: only an active or deactivated authority is exported`,
      )
    if ((await this.deps.authorities.keys(did)).some((k) => k.status === 'pending'))
      throw new AuthorityLifecycleError(
        'InvalidAuthorityState',
        `${did} has keys the directory never confirmed: settle them with \`authority activate\` first`,
      )
    await this.deps.db.transact((tx) =>
      this.deps.audit.append(tx, { authority: did, actor: by, action: 'authority.export' }),
    )
    const { lines, counts, keys } = await this.deps.db.transact((tx) => this.snapshot(tx, did), {
      timeoutMs: TRANSACTION_MS,
    })
    try {
      return { did, file: sealExport(Buffer.from(lines.join('\n'), 'utf8'), passphrase), counts }
    } finally {
      for (const k of keys) k.secret.fill(0)
    }
  }

  /** Every row that moves, read in one transaction (on PostgreSQL, one repeatable-read snapshot). */
  private async snapshot(tx: Tx, did: string) {
    if (this.deps.db.kind === 'postgres')
      await tx.$executeRawUnsafe('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY')
    const now = this.deps.clock.now()
    const q = this.deps.db.in(tx)
    const authority = await tx.authority.findUnique({ where: { did } })
    const keys = await this.deps.authorities.openKeys(tx, did)
    const lines: string[] = []
    const counts: Record<string, number> = {}
    const add = (spec: TableSpec, rows: Row[]) => {
      counts[spec.table] = rows.length
      for (const r of rows) lines.push(JSON.stringify({ t: spec.table, r: encodeRow(spec, r) }))
    }
    add(AUTHORITY, [authority as Row])
    add(KEY, keys as unknown as Row[])
    let spaces: string[] = []
    let invites: string[] = []
    const digests: Record<string, string> = {}
    for (const spec of TABLES) {
      const keyOf = { authority: [did], space: spaces, invite: invites }[spec.scope]
      let rows: Row[] = []
      if (spec.model) {
        const column = { authority: 'authorityDid', space: 'space', invite: 'inviteId' }[spec.scope]
        for (let i = 0; i < keyOf.length; i += 500) {
          const where = {
            [column]: { in: keyOf.slice(i, i + 500) },
            ...(spec.live ? { expiresAt: { gt: now } } : {}),
          }
          rows.push(...(await model(tx, spec.model).findMany({ where })))
        }
      } else {
        const select = Object.keys(spec.columns)
          .map((f) => `"${snake(f)}" AS "${f}"`)
          .join(', ')
        const column = spec.scope === 'authority' ? 'authority_did' : 'space'
        rows = await forEachChunk<Row>(
          q,
          `SELECT ${select} FROM ${spec.table} WHERE ${spec.live ? 'expires_at > ? AND ' : ''}${column} IN (*)`,
          spec.live ? [now] : [],
          keyOf,
          'query',
        )
      }
      if (spec.table === 'space') spaces = rows.map((r) => r.uri as string)
      if (spec.table === 'invite') invites = rows.map((r) => r.id as string)
      if (spec.table === 'member_state')
        for (const r of rows)
          digests[r.space as string] = Buffer.from(sha256(r.lthash as Uint8Array)).toString('hex')
      add(spec, rows)
    }
    const manifest: z.input<typeof MANIFEST> = {
      format: FORMAT,
      version: 1,
      did,
      exportedAt: now.toISOString(),
      from: this.deps.from,
      counts,
      digests,
    }
    return { lines: [JSON.stringify(manifest), ...lines], counts, keys }
  }

  /**
   * Opens, checks and writes an export, all or nothing: pending, for `authority activate` to
   * finish once the old host has transferred it.
   */
  async import(
    file: Buffer,
    passphrase: string,
    by: Actor,
  ): Promise<{ did: string; counts: Record<string, number> }> {
    const payload = openExport(file, passphrase, MAX_PAYLOAD_BYTES)
    const { manifest, rows } = parsePayload(payload)
    const did = manifest.did
    if (!isDid(did)) throw new AuthorityExportError(`the export's authority is not a DID`)
    // This host's own DID is taken by it (as `createWeb` refuses it): an authority by that name
    // would have its document served at /.well-known/did.json in place of the host's, from import on.
    if (did === this.deps.from.did)
      throw new AuthorityLifecycleError('DidNotServed', `${did} is Gatehouse's own DID`)
    const keys = checkKeys(did, rows.get(KEY.table)!)
    try {
      checkRows(manifest, rows)
      if (await this.deps.authorities.record(did))
        throw new AuthorityLifecycleError('AuthorityExists', `${did} is already held here`)
      await this.deps.db.transact(
        async (tx) => {
          const q = this.deps.db.in(tx)
          const [authority] = rows.get(AUTHORITY.table)!
          await tx.authority.create({
            data: {
              ...(authority as {
                did: string
                origin: string
                pdsService: boolean
                createdAt: Date
              }),
              status: 'pending',
              updatedAt: this.deps.clock.now(),
            },
          })
          await this.deps.authorities.restoreKeys(tx, did, keys)
          for (const spec of TABLES) {
            const list = rows.get(spec.table)!
            if (spec.model) {
              for (let i = 0; i < list.length; i += 500)
                await model(tx, spec.model).createMany({ data: list.slice(i, i + 500) })
            } else {
              const fields = Object.keys(spec.columns)
              const values = list.map((r) => fields.map((f) => r[f] as SqlValue))
              await insertRows(q, spec.table, fields.map(snake), values)
            }
          }
          await this.deps.audit.append(tx, {
            authority: did,
            actor: by,
            action: 'authority.import',
            before: { status: authority!.status },
            after: { status: 'pending', from: manifest.from, exportedAt: manifest.exportedAt },
          })
        },
        { timeoutMs: TRANSACTION_MS },
      )
    } catch (err) {
      if (!(err instanceof UniqueViolationError)) throw err
      // Another import of it may have won; else an id or hash of the export is one of this host's.
      throw new AuthorityLifecycleError(
        'AuthorityExists',
        (await this.deps.authorities.record(did))
          ? `${did} is already held here`
          : `${did}: a row of the export is already here (${err.message}); nothing was imported`,
      )
    } finally {
      for (const k of keys) k.secret.fill(0)
    }
    this.deps.authorities.forget(did)
    return { did, counts: manifest.counts }
  }
}

/** JSON lines: the manifest, then `{ t: table, r: row }`, each row checked against its table. */
function parsePayload(payload: Buffer) {
  const rows = new Map<string, Row[]>([...SPECS.keys()].map((t) => [t, []]))
  let manifest: z.output<typeof MANIFEST> | undefined
  let line = 0
  for (let start = 0; start < payload.length; line++) {
    let end = payload.indexOf(10, start)
    if (end < 0) end = payload.length
    if (end - start > MAX_LINE_BYTES)
      throw new AuthorityExportError(`line ${line + 1} of the export is too long`)
    let value: unknown
    try {
      value = JSON.parse(payload.subarray(start, end).toString('utf8'))
    } catch {
      throw new AuthorityExportError(`line ${line + 1} of the export is not JSON`)
    }
    start = end + 1
    if (!manifest) {
      const m = MANIFEST.safeParse(value)
      if (!m.success) throw new AuthorityExportError('the export does not start with its manifest')
      manifest = m.data
      continue
    }
    const { t, r } = (value ?? {}) as { t?: unknown; r?: unknown }
    const schema = typeof t === 'string' ? SCHEMAS.get(t) : undefined
    if (!schema) throw new AuthorityExportError(`line ${line + 1}: unknown table ${String(t)}`)
    const parsed = schema.safeParse(r)
    if (!parsed.success)
      throw new AuthorityExportError(
        `line ${line + 1} (${String(t)}): ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      )
    rows.get(t as string)!.push(parsed.data as Row)
  }
  if (!manifest) throw new AuthorityExportError('the export is empty')
  return { manifest, rows }
}

/** What `addKeys` names an authority's key (randomUUID). */
const KEY_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** Each key must be the private half of the public key it claims; none may be pending. */
function checkKeys(did: string, rows: Row[]): HeldKey[] {
  return rows.map((r) => {
    const k = r as unknown as HeldKey
    // Ids are kept on import: one of another form could take an id this host gives its own keys
    // (`oauth_client:<service DID>`), and the host could then never make that key.
    if (!KEY_ID.test(k.id)) throw new AuthorityExportError(`a key's id is not one Gatehouse makes`)
    if (!['atproto', 'atproto_space', 'rotation'].includes(k.purpose))
      throw new AuthorityExportError(`key ${k.id}: unknown purpose ${k.purpose}`)
    if (k.status !== 'active' && k.status !== 'retired')
      throw new AuthorityExportError(`key ${k.id}: status ${k.status} is not carried`)
    if (k.curve !== 'secp256k1' && k.curve !== 'p256')
      throw new AuthorityExportError(`key ${k.id}: unknown curve ${k.curve}`)
    let publicKey: string
    try {
      publicKey = Keypair.fromSecretKey(k.curve, k.secret).did()
    } catch {
      throw new AuthorityExportError(`key ${k.id} of ${did} is not a ${k.curve} private key`)
    }
    if (publicKey !== k.publicKey)
      throw new AuthorityExportError(`key ${k.id} of ${did} does not match its public key`)
    return k
  })
}

/**
 * Everything belongs to the one authority and is as the old host held it: counts as the manifest
 * says, member lists whose recomputed LtHash is the exported state and digest, an audit chain that
 * verifies up to its head.
 */
function checkRows(manifest: z.output<typeof MANIFEST>, rows: Map<string, Row[]>): void {
  const did = manifest.did
  const fail = (why: string) => {
    throw new AuthorityExportError(`the export of ${did} is inconsistent: ${why}`)
  }
  for (const [table, list] of rows)
    if ((manifest.counts[table] ?? 0) !== list.length)
      fail(`${table} rows differ from the manifest`)
  const [authority, ...others] = rows.get(AUTHORITY.table)!
  if (!authority || others.length > 0 || authority.did !== did) fail('not one authority row')
  if (authority!.status !== 'active' && authority!.status !== 'deactivated')
    fail(`its status is ${String(authority!.status)}`)
  const spaces = new Set(rows.get('space')!.map((r) => r.uri as string))
  for (const uri of spaces) if (!uri.startsWith(`at://${did}/`)) fail(`space ${uri} is another's`)
  const invites = new Set(rows.get('invite')!.map((r) => r.id as string))
  for (const spec of TABLES) {
    for (const r of rows.get(spec.table)!) {
      const owner = { authority: r.authorityDid === did, space: spaces.has(r.space as string) }
      const ok =
        spec.scope === 'invite'
          ? invites.has(r.inviteId as string)
          : spec.scope === 'space'
            ? owner.space
            : owner.authority
      if (!ok) fail(`a ${spec.table} row belongs to another authority`)
    }
  }
  const members = new Map<string, LtHash>()
  const counts = new Map<string, number>()
  for (const m of rows.get('space_member')!) {
    const space = m.space as string
    if (!members.has(space)) members.set(space, new LtHash())
    members.get(space)!.add(memberElement(m.did as string, m as { read: boolean; write: boolean }))
    counts.set(space, (counts.get(space) ?? 0) + 1)
  }
  const states = new Map(rows.get('member_state')!.map((s) => [s.space as string, s]))
  for (const space of members.keys()) if (!states.has(space)) fail(`${space} has no member state`)
  for (const [space, s] of states) {
    const recomputed = (members.get(space) ?? new LtHash()).state()
    const digest = Buffer.from(sha256(recomputed)).toString('hex')
    if (!Buffer.from(recomputed).equals(s.lthash as Buffer) || manifest.digests[space] !== digest)
      fail(`the member digest of ${space} does not match its members`)
    if ((counts.get(space) ?? 0) !== s.count) fail(`the member count of ${space} is wrong`)
  }
  const entries = rows
    .get('audit_entry')!
    .map(
      (r) =>
        ({ ...r, authority: r.authorityDid }) as unknown as Parameters<
          typeof verifyChain
        >[0][number],
    )
    .sort((a, b) => a.seq - b.seq)
  const [head] = rows.get('audit_head')! as { seq: number; hash: Buffer }[]
  const verdict = verifyChain(entries, head)
  if (!verdict.ok) fail(`its audit log breaks at entry ${verdict.firstBroken} (${verdict.why})`)
}

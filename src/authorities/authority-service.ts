import { randomUUID } from 'node:crypto'
import type { Clock } from '../clock.js'
import type { Db, Tx } from '../db/client.js'
import { UniqueViolationError } from '../db/errors.js'
import type { Curve } from '../crypto/did-key.js'
import { Keypair } from '../crypto/keypair.js'
import type { KeyVault } from '../keys/vault.js'

/** The authorities Gatehouse answers for, and their keys (sealed in the KeyVault). */

export type AuthorityStatus = 'pending' | 'active' | 'deactivated' | 'transferred'
export type AuthorityOrigin = 'created' | 'adopted' | 'registered'
export type KeyPurpose = 'atproto' | 'atproto_space' | 'rotation'
/** Keys of the service itself, not of an authority: `oauth_client` signs managers' logins. */
export type ServiceKeyPurpose = 'oauth_client'
export type KeyStatus = 'active' | 'pending' | 'retired'

export interface AuthorityRecord {
  did: string
  status: AuthorityStatus
  origin: AuthorityOrigin
  handle: string | null
  ownerRotationKey: string | null
  /** The DID document names Gatehouse as its `#atproto_pds` too (for generation A repo hosts). */
  pdsService: boolean
  createdAt: Date
  updatedAt: Date
}

/** What may be said about a held key: never its secret. */
export interface KeyInfo {
  id: string
  purpose: KeyPurpose
  status: KeyStatus
  publicKey: string
  createdAt: Date
  retiredAt: Date | null
}

/** A key with its secret: only ever inside an export's sealed payload. */
export interface HeldKey extends KeyInfo {
  curve: Curve
  secret: Uint8Array
}

export interface SigningKey {
  key: Keypair
  /** The verification method it is published as: `#atproto` or `#atproto_space`. */
  kid: '#atproto' | '#atproto_space'
}

/** What a sealed key is bound to: its row id, authority and purpose (AES-GCM additional data). */
export const aadFor = (id: string, authorityDid: string, purpose: string) =>
  `gatehouse:key:${id}:${authorityDid}:${purpose}`

/** What may be shown of a key row: everything but its secret. */
const keyInfo = (r: {
  id: string
  purpose: string
  status: string
  publicDidKey: string
  createdAt: Date
  retiredAt: Date | null
}): KeyInfo => ({
  id: r.id,
  purpose: r.purpose as KeyPurpose,
  status: r.status as KeyStatus,
  publicKey: r.publicDidKey,
  createdAt: r.createdAt,
  retiredAt: r.retiredAt,
})

export class AuthorityService {
  /**
   * Decrypted keys, by `did|purpose`, with their row id: trusted for `statusCacheMs` (another
   * process may rotate them), then checked against the active row and kept if it is the same.
   * This process's own changes drop the entry at once.
   */
  private readonly keyCache = new Map<
    string,
    { id: string | undefined; key: Keypair | undefined; expiresAtMs: number }
  >()

  /** Statuses read in the last `statusCacheMs`; this process's own changes drop the entry at once. */
  private readonly statuses = new Map<
    string,
    { value: AuthorityStatus | undefined; expiresAtMs: number }
  >()

  constructor(
    private readonly db: Db,
    private readonly vault: KeyVault,
    private readonly clock: Clock,
    private readonly statusCacheMs = 0,
  ) {}

  async status(did: string): Promise<AuthorityStatus | undefined> {
    const hit = this.statuses.get(did)
    if (hit && hit.expiresAtMs > this.clock.nowMs()) return hit.value
    const row = await this.db.prisma.authority.findUnique({
      where: { did },
      select: { status: true },
    })
    const value = row?.status as AuthorityStatus | undefined
    if (this.statusCacheMs > 0) {
      this.statuses.set(did, { value, expiresAtMs: this.clock.nowMs() + this.statusCacheMs })
      if (this.statuses.size > 10_000) this.statuses.delete(this.statuses.keys().next().value!)
    }
    return value
  }

  async isActive(did: string): Promise<boolean> {
    return (await this.status(did)) === 'active'
  }

  async setStatus(did: string, status: AuthorityStatus): Promise<void> {
    await this.db.prisma.authority.update({
      where: { did },
      data: { status, updatedAt: this.clock.now() },
    })
    this.forget(did)
  }

  async key(did: string, purpose: KeyPurpose | ServiceKeyPurpose): Promise<Keypair | undefined> {
    const cacheKey = `${did}|${purpose}`
    const hit = this.keyCache.get(cacheKey)
    const nowMs = this.clock.nowMs()
    if (hit && hit.expiresAtMs > nowMs) return hit.key
    const row = await this.db.prisma.authorityKey.findFirst({
      where: { authorityDid: did, purpose, status: 'active' },
      orderBy: { createdAt: 'desc' },
    })
    const key = row && row.id === hit?.id ? hit.key : row ? this.openRow(row) : undefined
    this.keyCache.set(cacheKey, { id: row?.id, key, expiresAtMs: nowMs + this.statusCacheMs })
    return key
  }

  /** The sealing KEK, read in `tx`: on PostgreSQL its row lock makes a KEK rotation wait. */
  private async sealingKekId(tx: Tx): Promise<string> {
    const read = async () =>
      this.db.kind === 'postgres'
        ? (
            await tx.$queryRaw<
              { current_kek_id: string }[]
            >`SELECT current_kek_id FROM kek_state WHERE id = 1 FOR SHARE`
          )[0]?.current_kek_id
        : (await tx.kekState.findUnique({ where: { id: 1 } }))?.currentKekId
    const current = await read()
    if (current) return current
    const now = this.clock.now()
    await tx.kekState.upsert({
      where: { id: 1 },
      create: { id: 1, currentKekId: this.vault.kekId, updatedAt: now },
      update: {},
    })
    return (await read())!
  }

  /** Stores `keys` sealed under the current KEK, inside `tx` when given. */
  async addKeys(
    did: string,
    keys: Partial<Record<KeyPurpose, Keypair | undefined>>,
    status: KeyStatus,
    tx?: Tx,
  ): Promise<void> {
    const store = async (tx: Tx) => {
      const kekId = await this.sealingKekId(tx)
      for (const [purpose, key] of Object.entries(keys) as [KeyPurpose, Keypair | undefined][])
        if (key) await this.insertKey(tx, kekId, randomUUID(), did, purpose, key, status)
    }
    await (tx ? store(tx) : this.db.transact(store))
    this.forget(did)
  }

  /**
   * A key of the service itself (`did` is the service DID), generated and sealed on first use. The
   * row id is fixed, so processes starting together agree on one key; `gatehouse kek rewrap`
   * re-seals it with the authority keys.
   */
  async serviceKey(did: string, purpose: ServiceKeyPurpose, curve: Curve): Promise<Keypair> {
    const held = await this.key(did, purpose)
    if (held) return held
    const id = `${purpose}:${did}`
    try {
      await this.db.transact(async (tx) => {
        const kekId = await this.sealingKekId(tx)
        await this.insertKey(tx, kekId, id, did, purpose, Keypair.generate(curve), 'active')
      })
    } catch (err) {
      if (!(err instanceof UniqueViolationError)) throw err
    }
    this.keyCache.delete(`${did}|${purpose}`)
    return (await this.key(did, purpose))!
  }

  private async insertKey(
    tx: Tx,
    kekId: string,
    id: string,
    did: string,
    purpose: KeyPurpose | ServiceKeyPurpose,
    key: Keypair,
    status: KeyStatus,
    dates: { createdAt: Date; retiredAt: Date | null } = {
      createdAt: this.clock.now(),
      retiredAt: null,
    },
  ): Promise<void> {
    const secret = key.exportSecretKey()
    await tx.authorityKey.create({
      data: {
        id,
        authorityDid: did,
        purpose,
        curve: key.curve,
        publicDidKey: key.did(),
        secretEnc: Buffer.from(this.vault.sealUnder(kekId, secret, aadFor(id, did, purpose))),
        kekId,
        status,
        ...dates,
      },
    })
  }

  /**
   * Every key of `did` with its secret, opened, read in `tx` (an export's snapshot). The caller
   * carries the secrets only inside the sealed export and zeroes them after.
   */
  async openKeys(tx: Tx, did: string): Promise<HeldKey[]> {
    const rows = await tx.authorityKey.findMany({
      where: { authorityDid: did },
      orderBy: { createdAt: 'asc' },
    })
    return rows.map((r) => ({
      ...keyInfo(r),
      curve: r.curve as Curve,
      secret: this.vault.open(
        new Uint8Array(r.secretEnc),
        aadFor(r.id, r.authorityDid, r.purpose),
        r.kekId,
      ),
    }))
  }

  /** Keys of an imported authority, with their ids and dates, sealed under this host's KEK. */
  async restoreKeys(tx: Tx, did: string, keys: HeldKey[]): Promise<void> {
    const kekId = await this.sealingKekId(tx)
    for (const k of keys) {
      const key = Keypair.fromSecretKey(k.curve, k.secret)
      await this.insertKey(tx, kekId, k.id, did, k.purpose, key, k.status, {
        createdAt: k.createdAt,
        retiredAt: k.retiredAt,
      })
    }
    this.forget(did)
  }

  /** Pending keys of `did` become the active ones for their purposes; the ones they replace retire. */
  async promotePending(did: string, tx?: Tx): Promise<void> {
    const run = async (tx: Tx) => {
      const pending = await tx.authorityKey.findMany({
        where: { authorityDid: did, status: 'pending' },
        select: { id: true, purpose: true },
      })
      const now = this.clock.now()
      for (const p of pending) {
        await tx.authorityKey.updateMany({
          where: { authorityDid: did, purpose: p.purpose, status: 'active' },
          data: { status: 'retired', retiredAt: now },
        })
        await tx.authorityKey.update({ where: { id: p.id }, data: { status: 'active' } })
      }
    }
    await (tx ? run(tx) : this.db.transact(run))
    this.forget(did)
  }

  /** Forgets pending keys (all, or the one `id`) that were never published. */
  async dropPending(did: string, id?: string): Promise<void> {
    await this.db.prisma.authorityKey.deleteMany({
      where: { id, authorityDid: did, status: 'pending' },
    })
    this.forget(did)
  }

  async record(did: string): Promise<AuthorityRecord | undefined> {
    const row = await this.db.prisma.authority.findUnique({ where: { did } })
    return (row as AuthorityRecord | null) ?? undefined
  }

  async list(): Promise<AuthorityRecord[]> {
    return (await this.db.prisma.authority.findMany({
      orderBy: { createdAt: 'asc' },
    })) as AuthorityRecord[]
  }

  async keys(did: string): Promise<KeyInfo[]> {
    const rows = await this.db.prisma.authorityKey.findMany({
      where: { authorityDid: did },
      orderBy: { createdAt: 'asc' },
    })
    return rows.map(keyInfo)
  }

  /** A KEK rotation, in one transaction: re-seals every key under ours, which every process then seals under. */
  async rewrapAll(): Promise<number> {
    const count = await this.db.transact(async (tx) => {
      // The sealing KEK first: its row lock waits for seals in flight and holds new ones.
      const now = this.clock.now()
      await tx.kekState.upsert({
        where: { id: 1 },
        create: { id: 1, currentKekId: this.vault.kekId, updatedAt: now },
        update: { currentKekId: this.vault.kekId, updatedAt: now },
      })
      const rows = await tx.authorityKey.findMany({ where: { kekId: { not: this.vault.kekId } } })
      for (const row of rows) {
        const aad = aadFor(row.id, row.authorityDid, row.purpose)
        const secret = this.vault.open(new Uint8Array(row.secretEnc), aad, row.kekId)
        await tx.authorityKey.update({
          where: { id: row.id },
          data: { secretEnc: Buffer.from(this.vault.seal(secret, aad)), kekId: this.vault.kekId },
        })
        secret.fill(0)
      }
      return rows.length
    })
    this.keyCache.clear()
    return count
  }

  private openRow(row: {
    id: string
    authorityDid: string
    purpose: string
    curve: string
    secretEnc: Uint8Array
    kekId: string
  }): Keypair {
    return Keypair.fromSecretKey(
      row.curve as Curve,
      this.vault.open(
        new Uint8Array(row.secretEnc),
        aadFor(row.id, row.authorityDid, row.purpose),
        row.kekId,
      ),
    )
  }

  /** Credentials are signed with `#atproto_space` when we hold one, else with `#atproto`. */
  async credentialKey(did: string): Promise<SigningKey | undefined> {
    const space = await this.key(did, 'atproto_space')
    if (space) return { key: space, kid: '#atproto_space' }
    const atproto = await this.key(did, 'atproto')
    return atproto ? { key: atproto, kid: '#atproto' } : undefined
  }

  forget(did: string): void {
    this.statuses.delete(did)
    for (const purpose of ['atproto', 'atproto_space', 'rotation'])
      this.keyCache.delete(`${did}|${purpose}`)
  }
}

import { SYSTEM_ACTOR, type Actor, type AuditLog } from '../audit/audit-log.js'
import type { Clock } from '../clock.js'
import type { Db, Tx } from '../db/client.js'
import { UniqueViolationError } from '../db/errors.js'
import { Keypair } from '../crypto/keypair.js'
import { getServiceEndpoint, getVerificationKey } from '../identity/did-doc.js'
import { formatDidKey } from '../crypto/did-key.js'
import type { DidResolver } from '../identity/resolver.js'
import type { Logger } from '../logger.js'
import type { AuthorityRecord, AuthorityService, KeyInfo, KeyPurpose } from './authority-service.js'
import { didWebLocation, webDidDocument } from './did-web.js'
import { dropManagers, setRole, type ManagerService } from './managers.js'
import {
  genesisOperation,
  PlcError,
  unsignedUpdateOperation,
  updateOperation,
  type PlcClient,
  type PlcService,
  type PlcState,
  type UnsignedPlcOperation,
} from './plc.js'

/** New keys stay `pending` until the directory takes the op: no crash names a key we lack. */

/** What an audit entry of a lifecycle step says: who, which step, and what it set. */
type Step = { by: Actor; action: string; before?: unknown; after?: unknown }

/** The public halves (did:key) of new keys, for the audit log: never a private key. */
const publicKeys = (keys: Partial<Record<KeyPurpose, Keypair | undefined>>) =>
  Object.fromEntries(Object.entries(keys).flatMap(([p, k]) => (k ? [[p, k.did()]] : [])))

export class AuthorityLifecycleError extends Error {
  override name = 'AuthorityLifecycleError'
  constructor(
    readonly code:
      | 'AuthorityNotFound'
      | 'AuthorityExists'
      | 'InvalidAuthorityState'
      | 'DidNotServed'
      | 'DocumentNotPublished'
      | 'PlcRefused'
      | 'PlcUnavailable',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}

export interface AuthorityView extends AuthorityRecord {
  keys: KeyInfo[]
}

export interface LifecycleDeps {
  db: Db
  audit: AuditLog
  authorities: AuthorityService
  managers: ManagerService
  plc: PlcClient
  resolver: DidResolver
  clock: Clock
  logger: Logger
  publicUrl: string
  didWebHosts: string[]
  /** Gatehouse's own DID: a root did:web on its own host is taken by it. */
  serviceDid: string
}

const SPACE_HOST = { type: 'AtprotoSpaceHost' }
/** Generation A repo hosts send notifyWrite only to the authority's `#atproto_pds`: we answer there too. */
const PDS = { type: 'AtprotoPersonalDataServer' }

function ourServices(endpoint: string, pdsService: boolean): Record<string, PlcService> {
  return {
    atproto_space_host: { ...SPACE_HOST, endpoint },
    ...(pdsService ? { atproto_pds: { ...PDS, endpoint } } : {}),
  }
}

export class AuthorityLifecycle {
  constructor(private readonly deps: LifecycleDeps) {}

  /** A new did:plc with our keys and services from genesis (repo hosts cache documents a day). */
  async createPlc(
    opts: {
      handle?: string
      ownerRotationKey?: string
      separateSpaceKey?: boolean
      owner?: string
      pdsService?: boolean
    },
    by: Actor = SYSTEM_ACTOR,
  ): Promise<AuthorityView> {
    const pdsService = opts.pdsService ?? true
    const rotation = Keypair.generate('secp256k1')
    const atproto = Keypair.generate('secp256k1')
    const space = opts.separateSpaceKey ? Keypair.generate('secp256k1') : undefined
    const state: PlcState = {
      rotationKeys: [...(opts.ownerRotationKey ? [opts.ownerRotationKey] : []), rotation.did()],
      verificationMethods: {
        atproto: atproto.did(),
        ...(space ? { atproto_space: space.did() } : {}),
      },
      alsoKnownAs: opts.handle ? [`at://${opts.handle}`] : [],
      services: ourServices(this.deps.publicUrl, pdsService),
    }
    const { did, op } = await genesisOperation(state, rotation)
    await this.insert(
      did,
      'created',
      { ...opts, pdsService },
      { rotation, atproto, atproto_space: space },
      false,
    )
    await this.submit(did, op).catch(async (err: unknown) => {
      await this.discard(did)
      throw err
    })
    // Recorded once the directory took it: a genesis it refused leaves nothing behind.
    const keys = publicKeys({ rotation, atproto, atproto_space: space })
    const after = { origin: 'created', handle: opts.handle, owner: opts.owner, pdsService, keys }
    await this.finish(did, { by, action: 'authority.create', after })
    return this.describe(did)
  }

  /** A did:web on a host Gatehouse is configured to answer for; Gatehouse serves its document. */
  async createWeb(
    opts: {
      did: string
      handle?: string
      separateSpaceKey?: boolean
      owner?: string
      pdsService?: boolean
    },
    by: Actor = SYSTEM_ACTOR,
  ): Promise<AuthorityView> {
    this.assertServable(opts.did)
    const atproto = Keypair.generate('secp256k1')
    const space = opts.separateSpaceKey ? Keypair.generate('secp256k1') : undefined
    await this.insert(
      opts.did,
      'created',
      { ...opts, pdsService: opts.pdsService ?? true },
      { atproto, atproto_space: space },
      true,
      { by, action: 'authority.create' },
    )
    return this.describe(opts.did)
  }

  /** Returns what the owner must publish; `atproto_space` leaves us no service auth (§4.7.5). */
  async adopt(
    opts: {
      did: string
      signing?: 'atproto' | 'atproto_space'
      owner?: string
      /** Also be its `#atproto_pds`; by default only when it has none (never take over an account's). */
      pdsService?: boolean
    },
    by: Actor = SYSTEM_ACTOR,
  ): Promise<{
    authority: AuthorityView
    plcOperation?: UnsignedPlcOperation
    didDocument?: object
  }> {
    const signing = opts.signing ?? 'atproto'
    const key = Keypair.generate('secp256k1')
    if (opts.did.startsWith('did:plc:')) {
      const last = await this.lastOperation(opts.did)
      const rotation = Keypair.generate('secp256k1')
      let pdsService = false
      const plcOperation = await unsignedUpdateOperation(last, (cur) => {
        pdsService = opts.pdsService ?? !cur.services.atproto_pds
        const { atproto_pds: theirs, ...others } = cur.services
        return {
          ...cur,
          rotationKeys: [...cur.rotationKeys.filter((k) => k !== rotation.did()), rotation.did()],
          verificationMethods: { ...cur.verificationMethods, [signing]: key.did() },
          services: {
            ...others,
            ...(theirs && !pdsService ? { atproto_pds: theirs } : {}),
            ...ourServices(this.deps.publicUrl, pdsService),
          },
        }
      })
      await this.insert(
        opts.did,
        'adopted',
        { ...opts, pdsService },
        { rotation, [signing]: key },
        false,
        { by, action: 'authority.adopt' },
      )
      return { authority: await this.describe(opts.did), plcOperation }
    }
    if (!didWebLocation(opts.did))
      throw new AuthorityLifecycleError('InvalidAuthorityState', `cannot adopt ${opts.did}`)
    const pdsService = opts.pdsService ?? !(await this.hasOwnPds(opts.did))
    await this.insert(opts.did, 'adopted', { ...opts, pdsService }, { [signing]: key }, false, {
      by,
      action: 'authority.adopt',
    })
    return {
      authority: await this.describe(opts.did),
      didDocument: webDidDocument({
        did: opts.did,
        keys: { [signing]: key.did() },
        services: ourServices(this.deps.publicUrl, pdsService),
      }),
    }
  }

  /** Sends a did:plc operation only when the directory differs, so a repeated call is harmless. */
  async setPdsService(did: string, on: boolean, by: Actor = SYSTEM_ACTOR): Promise<AuthorityView> {
    const record = await this.requireActive(did)
    if (did.startsWith('did:plc:')) {
      const rotation = await this.requireRotationKey(did)
      const last = await this.lastOperation(did)
      const endpoint = this.deps.publicUrl
      let needed = false
      const op = await updateOperation(
        last,
        (cur) => {
          const { atproto_pds: current, ...others } = cur.services
          const ours = current?.endpoint === endpoint
          needed = on ? !ours || current?.type !== PDS.type : ours
          if (!on && !ours) return cur
          return {
            ...cur,
            services: { ...others, ...(on ? { atproto_pds: { ...PDS, endpoint } } : {}) },
          }
        },
        rotation,
      )
      if (needed) await this.submit(did, op)
    } else if (record.origin !== 'created') {
      throw new AuthorityLifecycleError(
        'InvalidAuthorityState',
        `${did}: its owner publishes its did.json; getAuthority shows the entries to publish`,
      )
    }
    await this.deps.db.transact(async (tx) => {
      await tx.authority.update({
        where: { did },
        data: { pdsService: on, updatedAt: this.deps.clock.now() },
      })
      await this.record(tx, did, {
        by,
        action: 'authority.pds-service',
        before: { pdsService: record.pdsService },
        after: { pdsService: on },
      })
    })
    this.deps.authorities.forget(did)
    this.deps.resolver.invalidate(did)
    return this.describe(did)
  }

  /** Pending: once its document shows our keys and services; deactivated: at once. */
  async activate(did: string, by: Actor = SYSTEM_ACTOR): Promise<AuthorityView> {
    const record = await this.require(did)
    const step = { by, action: 'authority.activate', before: { status: record.status } }
    if (record.status === 'transferred')
      throw new AuthorityLifecycleError('InvalidAuthorityState', `${did} was transferred away`)
    if (record.status === 'pending') {
      await this.pointHere(record)
      await this.assertPublished(did)
      await this.keepRotationKeyIfGranted(did)
      await this.finish(did, step)
    } else if (await this.hasPending(did)) {
      // A change whose operation went unanswered: the document says whether it landed.
      try {
        await this.assertPublished(did)
        await this.finish(did, { ...step, after: { pendingKeys: 'published' } })
      } catch (err) {
        if (!(err instanceof AuthorityLifecycleError) || err.code !== 'DocumentNotPublished')
          throw err
        await this.deps.authorities.dropPending(did)
        await this.setStatus(did, 'active', { ...step, after: { pendingKeys: 'dropped' } })
      }
    } else {
      await this.setStatus(did, 'active', step)
    }
    return this.describe(did)
  }

  /** A new signing key; verifiers holding the old document refetch it on their first failure. */
  async rotateSigningKey(
    did: string,
    purpose: 'atproto' | 'atproto_space',
    by: Actor = SYSTEM_ACTOR,
  ): Promise<AuthorityView> {
    const record = await this.requireActive(did)
    const current = await this.deps.authorities.key(did, purpose)
    if (!current)
      throw new AuthorityLifecycleError(
        'InvalidAuthorityState',
        `${did} has no ${purpose} key here`,
      )
    const next = Keypair.generate('secp256k1')
    const step = {
      by,
      action: 'authority.rotate-signing-key',
      before: { [purpose]: current.did() },
      after: { [purpose]: next.did() },
    }
    await this.changeDocument(record, { [purpose]: next }, step, (cur) => ({
      ...cur,
      verificationMethods: { ...cur.verificationMethods, [purpose]: next.did() },
    }))
    return this.describe(did)
  }

  /** did:plc: a new rotation key of ours replaces the old; the owner's is replaced, or removed by null. */
  async rotateRotationKeys(
    did: string,
    opts: { ownerRotationKey?: string | null } = {},
    by: Actor = SYSTEM_ACTOR,
  ): Promise<AuthorityView> {
    const record = await this.requireActive(did)
    const old = await this.requireRotationKey(did)
    const next = Keypair.generate('secp256k1')
    const owner =
      opts.ownerRotationKey === undefined ? record.ownerRotationKey : opts.ownerRotationKey
    const step = {
      by,
      action: 'authority.rotate-rotation-keys',
      before: { rotation: old.did(), ownerRotationKey: record.ownerRotationKey },
      after: { rotation: next.did(), ownerRotationKey: owner },
    }
    await this.changeDocument(record, { rotation: next }, step, (cur) => ({
      ...cur,
      rotationKeys: [
        ...cur.rotationKeys.filter(
          (k) => k !== old.did() && k !== record.ownerRotationKey && k !== owner,
        ),
        ...(owner ? [owner] : []),
        next.did(),
      ],
    }))
    if (owner !== record.ownerRotationKey) {
      await this.deps.db.prisma.authority.update({
        where: { did },
        data: { ownerRotationKey: owner, updatedAt: this.deps.clock.now() },
      })
    }
    return this.describe(did)
  }

  /** Stops minting and relaying; with `rotationKeys` (did:plc) signs the entry over first. */
  async transfer(
    did: string,
    to: {
      rotationKeys?: string[]
      verificationMethods?: Record<string, string>
      services?: Record<string, { type: string; endpoint: string }>
    } = {},
    by: Actor = SYSTEM_ACTOR,
  ): Promise<AuthorityView> {
    const record = await this.require(did)
    if (record.status === 'transferred')
      throw new AuthorityLifecycleError('InvalidAuthorityState', `${did} was already transferred`)
    if (to.rotationKeys) {
      const rotation = await this.requireRotationKey(did)
      const last = await this.lastOperation(did)
      const ours = new Set((await this.deps.authorities.keys(did)).map((k) => k.publicKey))
      const op = await updateOperation(
        last,
        (cur) => ({
          ...cur,
          rotationKeys: to.rotationKeys!,
          verificationMethods:
            to.verificationMethods ??
            Object.fromEntries(
              Object.entries(cur.verificationMethods).filter(([, k]) => !ours.has(k)),
            ),
          // By default every service naming Gatehouse goes (#atproto_space_host, and #atproto_pds
          // when it points here); a PDS entry of the owner's own stays.
          services:
            to.services ??
            Object.fromEntries(
              Object.entries(cur.services).filter(
                ([id, svc]) => id !== 'atproto_space_host' && svc.endpoint !== this.deps.publicUrl,
              ),
            ),
        }),
        rotation,
      )
      await this.submit(did, op)
    }
    await this.setStatus(did, 'transferred', {
      by,
      action: 'authority.transfer',
      before: { status: record.status },
      after: to,
    })
    this.deps.logger.info({ did }, 'authority transferred: no longer minting or relaying for it')
    return this.describe(did)
  }

  /** Stops minting credentials and relaying writes for the authority, until `activate`. */
  async deactivate(did: string, by: Actor = SYSTEM_ACTOR): Promise<AuthorityView> {
    const record = await this.require(did)
    if (record.status !== 'active')
      throw new AuthorityLifecycleError('InvalidAuthorityState', `${did} is ${record.status}`)
    await this.setStatus(did, 'deactivated', { by, action: 'authority.deactivate' })
    return this.describe(did)
  }

  async describe(did: string): Promise<AuthorityView> {
    const record = await this.require(did)
    return { ...record, keys: await this.deps.authorities.keys(did) }
  }

  /** The document Gatehouse serves for a did:web authority it created or adopted, if any. */
  async webDocument(did: string): Promise<object | undefined> {
    const record = await this.deps.authorities.record(did)
    if (!record || record.status === 'transferred' || !did.startsWith('did:web:')) return undefined
    const keys: Record<string, string> = {}
    for (const k of await this.deps.authorities.keys(did)) {
      if (k.status === 'active' && k.purpose !== 'rotation') keys[k.purpose] = k.publicKey
    }
    if (Object.keys(keys).length === 0) return undefined
    return webDidDocument({
      did,
      keys,
      services: ourServices(this.deps.publicUrl, record.pdsService),
      alsoKnownAs: record.handle ? [`at://${record.handle}`] : undefined,
    })
  }

  private async insert(
    did: string,
    origin: 'created' | 'adopted',
    opts: { handle?: string; ownerRotationKey?: string; owner?: string; pdsService: boolean },
    keys: Partial<Record<KeyPurpose, Keypair | undefined>>,
    /** Active at once (a did:web we serve), or pending until published. */
    active: boolean,
    /** The audit entry, when this step is the one that makes the authority. */
    step?: Step,
  ): Promise<void> {
    const now = this.deps.clock.now()
    try {
      await this.deps.db.transact(async (tx) => {
        await tx.authority.create({
          data: {
            did,
            status: active ? 'active' : 'pending',
            origin,
            handle: opts.handle ?? null,
            ownerRotationKey: opts.ownerRotationKey ?? null,
            pdsService: opts.pdsService,
            createdAt: now,
            updatedAt: now,
          },
        })
        await this.deps.authorities.addKeys(did, keys, active ? 'active' : 'pending', tx)
        if (opts.owner) await setRole(this.deps.db.in(tx), did, opts.owner, 'owner', now)
        if (step) {
          const { handle, owner, pdsService } = opts
          const status = active ? 'active' : 'pending'
          const after = { origin, status, handle, owner, pdsService, keys: publicKeys(keys) }
          await this.record(tx, did, { ...step, after })
        }
      })
    } catch (err) {
      if (err instanceof UniqueViolationError)
        throw new AuthorityLifecycleError('AuthorityExists', `${did} is already held here`)
      throw err
    }
    this.deps.authorities.forget(did)
  }

  /** Removes an authority whose genesis never reached the directory. */
  private async discard(did: string): Promise<void> {
    await this.deps.db.transact(async (tx) => {
      await dropManagers(this.deps.db.in(tx), did)
      await tx.authorityKey.deleteMany({ where: { authorityDid: did } })
      await tx.authority.delete({ where: { did } })
    })
    this.deps.authorities.forget(did)
  }

  private async finish(did: string, step: Step): Promise<void> {
    await this.deps.db.transact(async (tx) => {
      await this.deps.authorities.promotePending(did, tx)
      await tx.authority.update({
        where: { did },
        data: { status: 'active', updatedAt: this.deps.clock.now() },
      })
      await this.record(tx, did, step)
    })
    this.deps.authorities.forget(did)
    this.deps.resolver.invalidate(did)
  }

  /** A status change and its audit entry, in one transaction. */
  private async setStatus(did: string, status: AuthorityRecord['status'], step: Step) {
    await this.deps.db.transact(async (tx) => {
      await tx.authority.update({
        where: { did },
        data: { status, updatedAt: this.deps.clock.now() },
      })
      await this.record(tx, did, step)
    })
    this.deps.authorities.forget(did)
  }

  private record(tx: Tx, did: string, { by, ...what }: Step) {
    return this.deps.audit.append(tx, { authority: did, actor: by, ...what })
  }

  /**
   * Publishes new keys: pending, then (did:plc) the operation, then active, recorded with the
   * promotion; a did:web just swaps.
   */
  private async changeDocument(
    record: AuthorityRecord,
    keys: Partial<Record<KeyPurpose, Keypair>>,
    step: Step,
    state: (cur: PlcState) => PlcState,
  ): Promise<void> {
    const did = record.did
    if (await this.hasPending(did)) {
      throw new AuthorityLifecycleError(
        'InvalidAuthorityState',
        `${did}: an earlier change was never confirmed by the directory; activateAuthority settles it`,
      )
    }
    if (did.startsWith('did:plc:')) {
      const rotation = await this.requireRotationKey(did)
      const last = await this.lastOperation(did)
      const op = await updateOperation(last, state, rotation)
      await this.deps.db.transact((tx) => this.deps.authorities.addKeys(did, keys, 'pending', tx))
      await this.submit(did, op).catch(async (err: AuthorityLifecycleError) => {
        if (err.code === 'PlcRefused') await this.deps.authorities.dropPending(did)
        throw err
      })
      await this.deps.db.transact(async (tx) => {
        await this.deps.authorities.promotePending(did, tx)
        await this.record(tx, did, step)
      })
    } else {
      await this.deps.db.transact(async (tx) => {
        await this.deps.authorities.addKeys(did, keys, 'pending', tx)
        await this.deps.authorities.promotePending(did, tx)
        await this.record(tx, did, step)
      })
    }
    this.deps.authorities.forget(did)
    this.deps.resolver.invalidate(did)
    this.deps.logger.info({ did, purposes: Object.keys(keys) }, 'authority keys rotated')
  }

  /**
   * An imported did:plc (the only pending authority whose rotation key is already active: an
   * adopted one's is pending until its owner publishes) is moved here by us: its services are
   * pointed at this host, signed with that key, when the directory does not say so already.
   */
  private async pointHere(record: AuthorityRecord): Promise<void> {
    const did = record.did
    if (!did.startsWith('did:plc:')) return
    const rotation = await this.deps.authorities.key(did, 'rotation')
    if (!rotation) return
    const endpoint = this.deps.publicUrl
    let needed = false
    const op = await updateOperation(
      await this.lastOperation(did),
      (cur) => {
        const ours = ourServices(endpoint, record.pdsService)
        needed = Object.entries(ours).some(
          ([id, svc]) =>
            cur.services[id]?.endpoint !== svc.endpoint || cur.services[id]?.type !== svc.type,
        )
        return { ...cur, services: { ...cur.services, ...ours } }
      },
      rotation,
    )
    if (needed) {
      await this.submit(did, op)
      this.deps.logger.info({ did, endpoint }, 'imported authority: its services now point here')
    }
  }

  /** The resolved document carries every pending key, and our services point here. */
  private async assertPublished(did: string): Promise<void> {
    let doc
    try {
      doc = await this.deps.resolver.resolve(did, { forceRefresh: true })
    } catch (err) {
      throw new AuthorityLifecycleError(
        'DocumentNotPublished',
        `${did} does not resolve: ${(err as Error).message}`,
        { cause: err },
      )
    }
    const record = await this.require(did)
    for (const id of record.pdsService
      ? ['#atproto_space_host', '#atproto_pds']
      : ['#atproto_space_host']) {
      const endpoint = getServiceEndpoint(doc, id)
      if (endpoint.status !== 'found' || endpoint.endpoint !== this.deps.publicUrl) {
        throw new AuthorityLifecycleError(
          'DocumentNotPublished',
          `${did}: ${id} does not point at ${this.deps.publicUrl} yet`,
        )
      }
    }
    for (const k of await this.deps.authorities.keys(did)) {
      if (k.status !== 'pending' || k.purpose === 'rotation') continue
      const published = getVerificationKey(doc, `#${k.purpose}`)
      if (!published || formatDidKey(published.curve, published.publicKey) !== k.publicKey) {
        throw new AuthorityLifecycleError(
          'DocumentNotPublished',
          `${did}: #${k.purpose} is not the key Gatehouse generated yet`,
        )
      }
    }
  }

  /** The owner may publish the adoption without our rotation key: then we drop it (only they can rotate). */
  private async keepRotationKeyIfGranted(did: string): Promise<void> {
    if (!did.startsWith('did:plc:')) return
    const pending = (await this.deps.authorities.keys(did)).find(
      (k) => k.purpose === 'rotation' && k.status === 'pending',
    )
    if (!pending) return
    const state = await plcCall(() => this.deps.plc.data(did))
    if (!state.rotationKeys?.includes(pending.publicKey)) {
      await this.deps.authorities.dropPending(did, pending.id)
      this.deps.logger.warn({ did }, 'adopted without our rotation key: only its owner can rotate')
    }
  }

  private async hasOwnPds(did: string): Promise<boolean> {
    try {
      const doc = await this.deps.resolver.resolve(did, { forceRefresh: true })
      const pds = getServiceEndpoint(doc, '#atproto_pds')
      return pds.status === 'found' && pds.endpoint !== this.deps.publicUrl
    } catch {
      return false
    }
  }

  /** Gatehouse's rotation key for a did:plc: without one, only its owner can change the document. */
  private async requireRotationKey(did: string): Promise<Keypair> {
    if (!did.startsWith('did:plc:'))
      throw new AuthorityLifecycleError('InvalidAuthorityState', 'only a did:plc has rotation keys')
    const rotation = await this.deps.authorities.key(did, 'rotation')
    if (!rotation)
      throw new AuthorityLifecycleError(
        'InvalidAuthorityState',
        `${did}: Gatehouse holds no rotation key, so only its owner can change the document`,
      )
    return rotation
  }

  private async hasPending(did: string): Promise<boolean> {
    return (await this.deps.authorities.keys(did)).some((k) => k.status === 'pending')
  }

  private assertServable(did: string): void {
    const loc = didWebLocation(did)
    if (!loc || !this.deps.didWebHosts.includes(loc.host)) {
      throw new AuthorityLifecycleError(
        'DidNotServed',
        `Gatehouse does not serve did:web documents for ${did} (GATEHOUSE_DID_WEB_HOSTS)`,
      )
    }
    if (did === this.deps.serviceDid)
      throw new AuthorityLifecycleError('DidNotServed', `${did} is Gatehouse's own DID`)
  }

  /** Sends a signed operation to the directory (its refusals as AuthorityLifecycleError). */
  private async submit(did: string, op: Parameters<PlcClient['submit']>[1]): Promise<void> {
    await plcCall(() => this.deps.plc.submit(did, op))
    this.deps.resolver.invalidate(did)
  }

  private lastOperation(did: string): Promise<unknown> {
    return plcCall(() => this.deps.plc.lastOperation(did))
  }

  private async require(did: string): Promise<AuthorityRecord> {
    const record = await this.deps.authorities.record(did)
    if (!record) throw new AuthorityLifecycleError('AuthorityNotFound', `${did} is not held here`)
    return record
  }

  private async requireActive(did: string): Promise<AuthorityRecord> {
    const record = await this.require(did)
    if (record.status !== 'active')
      throw new AuthorityLifecycleError('InvalidAuthorityState', `${did} is ${record.status}`)
    return record
  }
}

/** A directory call, its failures as AuthorityLifecycleError (PlcRefused or PlcUnavailable). */
async function plcCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call()
  } catch (err) {
    if (err instanceof AuthorityLifecycleError) throw err
    const refused = err instanceof PlcError && err.refused
    throw new AuthorityLifecycleError(
      refused ? 'PlcRefused' : 'PlcUnavailable',
      String((err as Error)?.message ?? err),
      { cause: err },
    )
  }
}

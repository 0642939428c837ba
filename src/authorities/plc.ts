import plcLib from '@did-plc/lib'
import type { Keypair } from '../crypto/keypair.js'
import { FetchError, type SafeFetcher, type TrustedService } from '../net/safe-fetch.js'

/** The PLC directory, as an authority's controller: operations built and signed with @did-plc/lib. */

export interface PlcService {
  type: string
  endpoint: string
}

/** The content of a PLC operation, without `prev` and `sig`. */
export interface PlcState {
  rotationKeys: string[]
  verificationMethods: Record<string, string>
  alsoKnownAs: string[]
  services: Record<string, PlcService>
}

export interface UnsignedPlcOperation extends PlcState {
  type: 'plc_operation'
  prev: string | null
}

export interface SignedPlcOperation extends UnsignedPlcOperation {
  sig: string
}

interface PlcSigner {
  did(): string
  jwtAlg: string
  sign(msg: Uint8Array): Promise<Uint8Array>
}

// CommonJS without a usable default-export type.
const lib = plcLib as unknown as {
  signOperation(op: UnsignedPlcOperation, signer: PlcSigner): Promise<SignedPlcOperation>
  didForCreateOp(op: SignedPlcOperation): Promise<string>
  createUpdateOp(
    last: unknown,
    signer: PlcSigner,
    fn: (normalized: UnsignedPlcOperation) => Omit<UnsignedPlcOperation, 'prev'>,
  ): Promise<SignedPlcOperation>
}

export class PlcError extends Error {
  override name = 'PlcError'
  constructor(
    message: string,
    /** The directory refused the operation (4xx): retrying the same one will not help. */
    readonly refused = false,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}

function signer(key: Keypair): PlcSigner {
  return { did: () => key.did(), jwtAlg: key.alg, sign: async (m) => key.sign(m) }
}

/** A signer whose signature is thrown away: @did-plc/lib computes `prev` only while signing. */
const UNSIGNED: PlcSigner = {
  did: () => 'did:key:unsigned',
  jwtAlg: 'ES256K',
  sign: async () => new Uint8Array(64),
}

/** The genesis operation for `state`, signed by `rotationKey`, and the DID it creates. */
export async function genesisOperation(
  state: PlcState,
  rotationKey: Keypair,
): Promise<{ did: string; op: SignedPlcOperation }> {
  const op = await lib.signOperation(
    { type: 'plc_operation', ...state, prev: null },
    signer(rotationKey),
  )
  return { did: await lib.didForCreateOp(op), op }
}

export function updateOperation(
  last: unknown,
  state: (current: PlcState) => PlcState,
  rotationKey: Keypair,
): Promise<SignedPlcOperation> {
  return lib.createUpdateOp(last, signer(rotationKey), (cur) => ({
    type: 'plc_operation',
    ...state(cur),
  }))
}

/** The same operation, unsigned, for a rotation key Gatehouse does not hold (the owner's). */
export async function unsignedUpdateOperation(
  last: unknown,
  state: (current: PlcState) => PlcState,
): Promise<UnsignedPlcOperation> {
  const { sig: _sig, ...op } = await lib.createUpdateOp(last, UNSIGNED, (cur) => ({
    type: 'plc_operation',
    ...state(cur),
  }))
  return op
}

const DID_PLC = 'did:plc:[a-z2-7]{24}'
const DIRECTORY_REQUESTS = {
  GET: new RegExp(`^/${DID_PLC}(?:/data|/log/last)?$`),
  POST: new RegExp(`^/${DID_PLC}$`),
}

/** Only the directory's DID paths reach it on any network; others are judged like any URL. */
export function plcDirectoryService(plcUrl: string): TrustedService {
  return {
    origin: new URL(plcUrl).origin,
    allows: (method, path) => DIRECTORY_REQUESTS[method].test(path),
  }
}

export class PlcClient {
  constructor(
    private readonly fetcher: SafeFetcher,
    private readonly url: string,
  ) {}

  async lastOperation(did: string): Promise<unknown> {
    try {
      return await this.fetcher.getJson(`${this.url}/${did}/log/last`)
    } catch (err) {
      throw new PlcError(`could not read the PLC log of ${did}: ${(err as Error).message}`, false, {
        cause: err,
      })
    }
  }

  /** The directory's current state of `did` (rotation keys included, which documents omit). */
  async data(did: string): Promise<PlcState> {
    try {
      return (await this.fetcher.getJson(`${this.url}/${did}/data`)) as PlcState
    } catch (err) {
      throw new PlcError(
        `could not read the PLC state of ${did}: ${(err as Error).message}`,
        false,
        {
          cause: err,
        },
      )
    }
  }

  /** Sends a signed operation; PlcError (`refused` on a 4xx) when the directory does not take it. */
  async submit(did: string, op: SignedPlcOperation): Promise<void> {
    let status: number
    let detail = ''
    try {
      const res = await this.fetcher.request(`${this.url}/${did}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(op),
        maxBytes: 64 * 1024,
      })
      status = res.status
      if (status >= 400) {
        try {
          detail = String(
            (JSON.parse(res.body.toString('utf8')) as { message?: unknown }).message ?? '',
          )
        } catch {
          detail = ''
        }
      }
    } catch (err) {
      const why = err instanceof FetchError ? err.message : String(err)
      throw new PlcError(`the PLC directory did not answer: ${why}`, false, { cause: err })
    }
    if (status >= 200 && status < 300) return
    throw new PlcError(
      `the PLC directory refused the operation (${status}${detail ? `: ${detail.slice(0, 200)}` : ''})`,
      status >= 400 && status < 500,
    )
  }
}

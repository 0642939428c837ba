import { Worker } from 'node:worker_threads'
import type { Curve } from '../crypto/did-key.js'
import { usesLibsecp256k1, type Keypair, type Presignature } from '../crypto/keypair.js'
import type { Signer } from '../crypto/jws.js'
import type { Logger } from '../logger.js'

/**
 * Signing on worker threads, for the curves @noble/curves signs: P-256, and ES256K where the
 * libsecp256k1 binding does not load. Where it does, ES256K (every key Gatehouse holds) is signed
 * inline by Keypair.sign in well under 0.1 ms, less than a trip to a thread and back, and none of
 * what follows applies to it. A low-S ECDSA signature with @noble/curves costs about 0.7 ms of pure
 * JavaScript when its tables are warm and nearly twice that on a busy event loop, where every
 * request evicts them; every credential and every uncached outbound service-auth token needs one. The
 * pool keeps that work on threads that do nothing else, so the event loop serves requests meanwhile
 * and the signing runs on another core.
 *
 * Better still, most signatures are not made on demand at all. The costly part of an ECDSA signature,
 * the point k·G, does not depend on the message or the key, so the workers make nonces ahead
 * (`nonces` per curve in stock, refilled in batches as they are used; see Keypair.signPresigned),
 * and a signature is finished on the calling thread in about 10 microseconds. Each nonce is taken
 * out of the stock before it is used and never seen again. When the stock is empty (a burst larger
 * than it, or the first signature on a curve), the signature is a job for a worker as before.
 *
 * A job carries the key's 32-byte secret (in memory, between threads of this process; never logged).
 * The workers run the same call as Keypair.sign. If a worker fails, its pending jobs are signed
 * inline and the pool stops being used.
 */
export class SigningPool implements Signer {
  private readonly pending = new Map<
    number,
    { key: Keypair; data: Uint8Array; resolve(sig: Uint8Array): void }
  >()
  private readonly stock = new Map<Curve, Presignature[]>()
  private readonly refilling = new Set<Curve>()
  private nextId = 0
  private turn = 0
  private broken = false

  private constructor(
    private readonly workers: Worker[],
    private readonly logger: Logger,
    private readonly nonces: number,
  ) {
    for (const w of workers) {
      w.on('message', (m: WorkerAnswer) => {
        if ('curve' in m) return this.restock(m.curve, m.nonces)
        const job = this.pending.get(m.id)
        if (!job) return
        this.pending.delete(m.id)
        if (this.pending.size === 0) this.idle(true)
        job.resolve(m.sig ?? job.key.sign(job.data))
      })
      w.on('error', (err) => this.fail(err))
      // Workers only end when close() asks them to (which marks the pool closed first).
      w.on('exit', (code) => this.fail(new Error(`signing worker exited (${code})`)))
      w.unref()
    }
  }

  /** `threads` workers (at least one), keeping up to `nonces` nonces per curve in stock (0: none). */
  static start(threads: number, logger: Logger, nonces = 0): SigningPool {
    const source = workerSource()
    const workers = Array.from(
      { length: threads },
      () => new Worker(new URL(`data:text/javascript,${encodeURIComponent(source)}`)),
    )
    return new SigningPool(workers, logger, nonces)
  }

  sign(key: Keypair, data: Uint8Array): Promise<Uint8Array> {
    if (this.broken || usesLibsecp256k1(key.curve)) return Promise.resolve(key.sign(data))
    const presigned = this.fromStock(key, data)
    if (presigned) return Promise.resolve(presigned)
    const id = this.nextId++
    const worker = this.nextWorker()
    return new Promise((resolve) => {
      if (this.pending.size === 0) this.idle(false)
      this.pending.set(id, { key, data, resolve })
      worker.postMessage({ id, curve: key.curve, secret: key.exportSecretKey(), data })
    })
  }

  /** Nonces in stock for `curve` (for tests and metrics). */
  noncesInStock(curve: Curve): number {
    return this.stock.get(curve)?.length ?? 0
  }

  /** False for a curve libsecp256k1 signs: those signatures are made inline, never on a thread. */
  hasIdleThread(curve?: Curve): boolean {
    if (curve !== undefined && usesLibsecp256k1(curve)) return false
    return !this.broken && this.pending.size < this.workers.length
  }

  async close(): Promise<void> {
    this.broken = true
    this.stock.clear()
    this.drainInline()
    await Promise.all(this.workers.map((w) => w.terminate()))
  }

  /** A signature finished from a nonce in stock, if there is one; asks for more when it runs low. */
  private fromStock(key: Keypair, data: Uint8Array): Uint8Array | undefined {
    if (this.nonces === 0) return undefined
    let stock = this.stock.get(key.curve)
    if (!stock) this.stock.set(key.curve, (stock = []))
    const nonce = stock.pop()
    this.refill(key.curve, stock)
    return nonce && key.signPresigned(data, nonce)
  }

  /** One batch in flight per curve, until the stock is full. */
  private refill(curve: Curve, stock: Presignature[]): void {
    if (this.broken || this.refilling.has(curve) || stock.length >= this.nonces) return
    this.refilling.add(curve)
    this.nextWorker().postMessage({
      curve,
      count: Math.min(NONCE_BATCH, this.nonces - stock.length),
    })
  }

  private restock(curve: Curve, values: bigint[]): void {
    this.refilling.delete(curve)
    const stock = this.stock.get(curve)
    if (!stock || this.broken) return
    for (let i = 0; i + 1 < values.length; i += 2)
      stock.push({ r: values[i]!, kInverse: values[i + 1]! })
    this.refill(curve, stock)
  }

  private nextWorker(): Worker {
    return this.workers[this.turn++ % this.workers.length]!
  }

  /** Idle workers must not keep the process alive; busy ones must, until their answers arrive. */
  private idle(idle: boolean): void {
    for (const w of this.workers) {
      if (idle) w.unref()
      else w.ref()
    }
  }

  private fail(err: unknown): void {
    if (this.broken) return
    this.broken = true
    this.stock.clear()
    this.logger.error({ err }, 'signing worker failed: signing on the event loop from now on')
    this.drainInline()
  }

  private drainInline(): void {
    for (const [id, job] of this.pending) {
      this.pending.delete(id)
      job.resolve(job.key.sign(job.data))
    }
  }
}

/** Nonces a worker makes per request: about 6 ms of its time, so a job waits at most that long. */
const NONCE_BATCH = 8

/** What a worker posts back: a job's signature (or error), or a batch of nonces as [r, k⁻¹, …]. */
type WorkerAnswer =
  { id: number; sig?: Uint8Array; error?: string } | { curve: Curve; nonces: bigint[] }

/**
 * The worker, as an ES module with the noble entry points resolved from this package. A nonce is
 * k uniform in [1, n-1] from 48 bytes of the CSPRNG (mapHashToField: bias below 2⁻¹²⁸), r the x of
 * k·G mod n, and k⁻¹ computed as b·(b·k)⁻¹ with a random b, as noble blinds its own inversion.
 */
function workerSource(): string {
  const k1 = import.meta.resolve('@noble/curves/secp256k1.js')
  const nist = import.meta.resolve('@noble/curves/nist.js')
  const modular = import.meta.resolve('@noble/curves/abstract/modular.js')
  return `
import { randomBytes } from 'node:crypto'
import { parentPort } from 'node:worker_threads'
import { secp256k1 } from ${JSON.stringify(k1)}
import { p256 } from ${JSON.stringify(nist)}
import { mapHashToField } from ${JSON.stringify(modular)}
const curves = { secp256k1, p256 }
function scalar(Fn) {
  return Fn.fromBytes(mapHashToField(randomBytes(48), Fn.ORDER))
}
function nonces(curve, count) {
  const { Fn, BASE } = curves[curve].Point
  const out = []
  while (out.length < 2 * count) {
    const k = scalar(Fn)
    const r = Fn.create(BASE.multiply(k).toAffine().x)
    if (r === 0n) continue
    const b = scalar(Fn)
    out.push(r, Fn.mul(b, Fn.inv(Fn.mul(b, k))))
  }
  return out
}
parentPort.on('message', ({ id, curve, secret, data, count }) => {
  if (count !== undefined) return parentPort.postMessage({ curve, nonces: nonces(curve, count) })
  try {
    const sig = curves[curve].sign(data, secret, { prehash: true, lowS: true, format: 'compact' })
    secret.fill(0)
    parentPort.postMessage({ id, sig })
  } catch (err) {
    parentPort.postMessage({ id, error: String(err && err.message) })
  }
})
`
}

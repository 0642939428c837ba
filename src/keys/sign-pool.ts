import { Worker } from 'node:worker_threads'
import type { Keypair } from '../crypto/keypair.js'
import type { Signer } from '../crypto/jws.js'
import type { Logger } from '../logger.js'

/**
 * Signing on worker threads. A low-S ECDSA signature with @noble/curves costs about 0.7 ms of pure
 * JavaScript when its tables are warm and nearly twice that on a busy event loop, where every
 * request evicts them; every credential and every uncached outbound service-auth token needs one. The
 * pool keeps that work on threads that do nothing else, so the event loop serves requests meanwhile
 * and the signing runs on another core.
 *
 * A job carries the key's 32-byte secret (in memory, between threads of this process; never logged).
 * The workers run the same call as Keypair.sign, so a signature is the same either way. If a worker
 * fails, its pending jobs are signed inline and the pool stops being used.
 */
export class SigningPool implements Signer {
  private readonly pending = new Map<
    number,
    { key: Keypair; data: Uint8Array; resolve(sig: Uint8Array): void }
  >()
  private nextId = 0
  private turn = 0
  private broken = false

  private constructor(
    private readonly workers: Worker[],
    private readonly logger: Logger,
  ) {
    for (const w of workers) {
      w.on('message', (m: { id: number; sig?: Uint8Array; error?: string }) => {
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

  static start(threads: number, logger: Logger): SigningPool {
    const source = workerSource()
    const workers = Array.from(
      { length: threads },
      () => new Worker(new URL(`data:text/javascript,${encodeURIComponent(source)}`)),
    )
    return new SigningPool(workers, logger)
  }

  sign(key: Keypair, data: Uint8Array): Promise<Uint8Array> {
    if (this.broken) return Promise.resolve(key.sign(data))
    const id = this.nextId++
    const worker = this.workers[this.turn++ % this.workers.length]!
    return new Promise((resolve) => {
      if (this.pending.size === 0) this.idle(false)
      this.pending.set(id, { key, data, resolve })
      worker.postMessage({ id, curve: key.curve, secret: key.exportSecretKey(), data })
    })
  }

  hasIdleThread(): boolean {
    return !this.broken && this.pending.size < this.workers.length
  }

  async close(): Promise<void> {
    this.broken = true
    this.drainInline()
    await Promise.all(this.workers.map((w) => w.terminate()))
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

/** The worker, as an ES module with the noble entry points resolved from this package. */
function workerSource(): string {
  const k1 = import.meta.resolve('@noble/curves/secp256k1.js')
  const nist = import.meta.resolve('@noble/curves/nist.js')
  return `
import { parentPort } from 'node:worker_threads'
import { secp256k1 } from ${JSON.stringify(k1)}
import { p256 } from ${JSON.stringify(nist)}
const curves = { secp256k1, p256 }
parentPort.on('message', ({ id, curve, secret, data }) => {
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

/**
 * The signing pool makes exactly the signatures Keypair.sign makes, on worker threads; if a worker
 * dies, its pending and later jobs are signed inline, so no signature is ever lost.
 */
import t from 'tap'
import { Keypair, verifySignature } from '../../src/crypto/keypair.js'
import { SigningPool } from '../../src/keys/sign-pool.js'
import { createLogger } from '../../src/logger.js'
import { LogCapture } from '../_helpers/logs.js'

t.test('signatures are the ones Keypair.sign makes (deterministic, low-S)', async (t) => {
  const pool = SigningPool.start(2, createLogger({ level: 'warn' }))
  t.teardown(() => pool.close())
  for (const curve of ['secp256k1', 'p256'] as const) {
    const key = Keypair.generate(curve)
    const messages = Array.from({ length: 20 }, (_, i) => new TextEncoder().encode(`m${i}`))
    const sigs = await Promise.all(messages.map((m) => pool.sign(key, m)))
    messages.forEach((m, i) => {
      t.same(Buffer.from(sigs[i]!), Buffer.from(key.sign(m)), `${curve} ${i}`)
      t.ok(verifySignature(curve, key.publicKey, m, sigs[i]!, { allowHighS: false }))
    })
  }
})

t.test('a dead worker: pending and later jobs are signed inline, and it is logged', async (t) => {
  const logs = new LogCapture()
  const pool = SigningPool.start(1, createLogger({ level: 'warn', destination: logs }))
  t.teardown(() => pool.close())
  const key = Keypair.generate('secp256k1')
  const m = new Uint8Array([7])
  const pending = pool.sign(key, m)
  await (pool as unknown as { workers: { terminate(): Promise<number> }[] }).workers[0]!.terminate()
  t.same(Buffer.from(await pending), Buffer.from(key.sign(m)), 'the pending job still completes')
  t.same(Buffer.from(await pool.sign(key, m)), Buffer.from(key.sign(m)), 'later jobs too')
  t.match(logs.text(), /signing worker failed/)
  t.notOk(logs.text().includes(Buffer.from(key.exportSecretKey()).toString('hex')))
})

t.test(
  'hasIdleThread: true while a thread is free, false while all are busy or once closed',
  async (t) => {
    const pool = SigningPool.start(2, createLogger({ level: 'warn' }))
    const key = Keypair.generate('secp256k1')
    const m = new Uint8Array([1])
    t.equal(pool.hasIdleThread(), true, 'idle')
    const one = pool.sign(key, m)
    t.equal(pool.hasIdleThread(), true, 'one of two busy')
    const two = pool.sign(key, m)
    t.equal(pool.hasIdleThread(), false, 'both busy')
    await Promise.all([one, two])
    t.equal(pool.hasIdleThread(), true, 'idle again')
    await pool.close()
    t.equal(pool.hasIdleThread(), false, 'closed: signing is inline')
  },
)

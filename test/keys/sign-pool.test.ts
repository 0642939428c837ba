/**
 * The signing pool makes the signatures Keypair.sign makes, on worker threads, or finishes them from
 * nonces its workers made ahead (valid, low-S, one nonce each); if a worker dies, its pending and
 * later jobs are signed inline, so no signature is ever lost.
 */
import t from 'tap'
import { p256 } from '@noble/curves/nist.js'
import { Keypair, verifySignature, verifyWithOpenSsl } from '../../src/crypto/keypair.js'
import { SigningPool } from '../../src/keys/sign-pool.js'
import { createLogger } from '../../src/logger.js'
import { LogCapture } from '../_helpers/logs.js'

t.test(
  'without nonces: signatures are the ones Keypair.sign makes (deterministic, low-S)',
  async (t) => {
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
  },
)

t.test('a dead worker: pending and later jobs are signed inline, and it is logged', async (t) => {
  const logs = new LogCapture()
  const pool = SigningPool.start(1, createLogger({ level: 'warn', destination: logs }))
  t.teardown(() => pool.close())
  const key = Keypair.generate('p256')
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
    const key = Keypair.generate('p256')
    const m = new Uint8Array([1])
    t.equal(pool.hasIdleThread('p256'), true, 'idle')
    t.equal(pool.hasIdleThread('secp256k1'), false, 'ES256K is signed inline by libsecp256k1')
    const one = pool.sign(key, m)
    t.equal(pool.hasIdleThread('p256'), true, 'one of two busy')
    const two = pool.sign(key, m)
    t.equal(pool.hasIdleThread('p256'), false, 'both busy')
    await Promise.all([one, two])
    t.equal(pool.hasIdleThread('p256'), true, 'idle again')
    await pool.close()
    t.equal(pool.hasIdleThread('p256'), false, 'closed: signing is inline')
  },
)

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')
const until = async (what: () => boolean) => {
  for (let i = 0; i < 500 && !what(); i++) await new Promise((r) => setTimeout(r, 10))
}

t.test('ES256K with libsecp256k1: signed inline, RFC 6979, no nonces made', async (t) => {
  const pool = SigningPool.start(1, createLogger({ level: 'warn' }), 16)
  t.teardown(() => pool.close())
  const key = Keypair.generate('secp256k1')
  for (let i = 0; i < 20; i++) {
    const m = new TextEncoder().encode(`k${i}`)
    t.equal(hex(await pool.sign(key, m)), hex(key.sign(m)), `${i}: the deterministic signature`)
  }
  await new Promise((r) => setTimeout(r, 50))
  t.equal(pool.noncesInStock('secp256k1'), 0, 'no stock for a curve signed inline')
})

t.test('nonces made ahead: stocked per curve, one per signature, refilled', async (t) => {
  const pool = SigningPool.start(1, createLogger({ level: 'warn' }), 16)
  t.teardown(() => pool.close())
  for (const curve of ['p256'] as const) {
    const key = Keypair.generate(curve)
    const m = new TextEncoder().encode(`first ${curve}`)
    t.equal(pool.noncesInStock(curve), 0, `${curve}: no stock before the curve is used`)
    t.equal(hex(await pool.sign(key, m)), hex(key.sign(m)), 'the first is signed whole (RFC 6979)')
    await until(() => pool.noncesInStock(curve) === 16)
    t.equal(pool.noncesInStock(curve), 16, 'then the stock fills up to its size')

    const rs = new Set<string>()
    for (let i = 0; i < 40; i++) {
      const data = new TextEncoder().encode(`m${i}`)
      const inStock = pool.noncesInStock(curve)
      const sig = await pool.sign(key, data)
      if (inStock > 0) {
        t.not(hex(sig), hex(key.sign(data)), `${curve} ${i}: finished from a nonce`)
      }
      // Low S, valid for noble and for OpenSSL (the verifiers a peer may use).
      t.ok(verifySignature(curve, key.publicKey, data, sig, { allowHighS: false }))
      t.ok(verifyWithOpenSsl(curve, key.publicKey, data, sig, { allowHighS: false }))
      t.ok(p256.verify(sig, data, key.publicKey, { prehash: true, lowS: true }))
      rs.add(hex(sig.subarray(0, 32)))
    }
    t.equal(rs.size, 40, `${curve}: every signature has a nonce of its own`)
    await until(() => pool.noncesInStock(curve) === 16)
    t.equal(pool.noncesInStock(curve), 16, 'refilled after use')
  }
})

t.test('a burst larger than the stock: every signature is made and valid', async (t) => {
  const pool = SigningPool.start(1, createLogger({ level: 'warn' }), 4)
  t.teardown(() => pool.close())
  const key = Keypair.generate('p256')
  await pool.sign(key, new Uint8Array([0]))
  await until(() => pool.noncesInStock('p256') === 4)
  const messages = Array.from({ length: 30 }, (_, i) => new TextEncoder().encode(`b${i}`))
  const sigs = await Promise.all(messages.map((m) => pool.sign(key, m)))
  const presigned = sigs.filter((sig, i) => hex(sig) !== hex(key.sign(messages[i]!))).length
  t.ok(presigned >= 4, `the stock was used (${presigned} of 30)`)
  t.ok(presigned < 30, 'and the rest were signed as jobs')
  sigs.forEach((sig, i) =>
    t.ok(verifySignature('p256', key.publicKey, messages[i]!, sig, { allowHighS: false })),
  )
})

t.test('closed or failed: the stock is dropped and signing is inline', async (t) => {
  const pool = SigningPool.start(1, createLogger({ level: 'warn' }), 8)
  const key = Keypair.generate('p256')
  await pool.sign(key, new Uint8Array([0]))
  await until(() => pool.noncesInStock('p256') === 8)
  await pool.close()
  t.equal(pool.noncesInStock('p256'), 0)
  const m = new Uint8Array([9])
  t.equal(hex(await pool.sign(key, m)), hex(key.sign(m)), 'inline, deterministic')
})

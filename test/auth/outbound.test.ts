/**
 * Outbound service auth: a token is reused for the same issuer, audience, method and key within the
 * reuse window (so a fan-out to many syncers does not sign per delivery), and never past it.
 */
import t from 'tap'
import { OutboundAuth } from '../../src/auth/outbound.js'
import { inlineSigner } from '../../src/crypto/jws.js'
import { ManualClock } from '../../src/clock.js'
import { Keypair } from '../../src/crypto/keypair.js'
import { SigningPool } from '../../src/keys/sign-pool.js'
import { createLogger } from '../../src/logger.js'
import { decodeToken } from '../_helpers/spaces.js'

const key = Keypair.generate('secp256k1')
const base = {
  iss: 'did:web:a.test',
  aud: 'did:web:s.test#atproto_space_syncer',
  lxm: 'x.y.z',
  key,
}

t.test('reused within the window, fresh after it', async (t) => {
  const clock = new ManualClock(Date.UTC(2026, 10, 23))
  const out = new OutboundAuth(inlineSigner, clock, 30)
  const first = await out.token(base)
  t.equal(await out.token(base), first, 'same call, same token')
  clock.advance(29_000)
  t.equal(await out.token(base), first, 'still within the window')
  clock.advance(1_000)
  const second = await out.token(base)
  t.not(second, first, 'a new token once the window has passed')
  const claims = decodeToken(second).payload as { exp: number; iat: number }
  t.equal(claims.exp - claims.iat, 60)
  t.ok(claims.exp - clock.nowSec() >= 30, 'a reused token always has at least 30 s of life left')
})

t.test('audience, method and key each get their own token', async (t) => {
  const out = new OutboundAuth(inlineSigner, new ManualClock(0), 30)
  const first = await out.token(base)
  t.not(await out.token({ ...base, aud: 'did:web:other.test' }), first)
  t.not(await out.token({ ...base, lxm: 'x.y.other' }), first)
  t.not(await out.token({ ...base, key: Keypair.generate('secp256k1') }), first)
})

t.test('0 signs every call; a window as long as the token life is refused', async (t) => {
  const out = new OutboundAuth(inlineSigner, new ManualClock(0), 0)
  t.not(await out.token(base), await out.token(base))
  t.throws(() => new OutboundAuth(inlineSigner, new ManualClock(0), 60))
})

t.test('concurrent calls share one signature', async (t) => {
  let signed = 0
  const counting = {
    sign: async (key: Keypair, data: Uint8Array) => {
      signed++
      return key.sign(data)
    },
  }
  const out = new OutboundAuth(counting, new ManualClock(0), 30)
  const tokens = await Promise.all(Array.from({ length: 20 }, () => out.token(base)))
  t.equal(new Set(tokens).size, 1)
  t.equal(signed, 1)
})

const es256k = base

t.test(
  'prewarm: signs ahead on an idle signing thread (slow curves only), renews before the reuse ends',
  async (t) => {
    const clock = new ManualClock(Date.UTC(2026, 10, 23))
    const pool = SigningPool.start(1, createLogger({ level: 'warn' }))
    t.teardown(() => pool.close())
    const out = new OutboundAuth(pool, clock, 30)
    // P-256 is signed by noble on the thread; ES256K by libsecp256k1 inline, never ahead.
    const base = { ...es256k, key: Keypair.generate('p256') }
    t.equal(out.canSignAhead('secp256k1'), false, 'ES256K: nothing to gain by signing ahead')
    t.equal(await out.prewarm(es256k, 10), false, 'so nothing is')
    t.equal(out.peek(base), undefined, 'nothing held')
    t.equal(await out.prewarm(base, 10), true, 'signed ahead')
    const ahead = await out.peek(base)
    t.equal(await out.token(base), ahead, 'token() returns the one signed ahead')
    t.equal(await out.prewarm(base, 10), false, 'fresh enough: nothing signed')
    clock.advance(21_000)
    t.equal(await out.prewarm(base, 10), true, 'under 10 s of reuse left: renewed')
    t.not(await out.token(base), ahead, 'and the renewed token is used')

    t.equal(out.canSignAhead('p256'), true, 'an idle signing thread')
    const inline = new OutboundAuth(inlineSigner, clock, 30)
    t.equal(inline.canSignAhead('p256'), false)
    t.equal(await inline.prewarm(base, 10), false, 'no signing thread: nothing signed ahead')
    t.equal(inline.peek(base), undefined)
    const off = new OutboundAuth(pool, clock, 0)
    t.equal(off.canSignAhead('p256'), false)
    t.equal(await off.prewarm(base, 10), false, 'reuse off: nothing to warm')
  },
)

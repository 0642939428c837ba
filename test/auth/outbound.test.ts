/**
 * Outbound service auth: a token is reused for the same issuer, audience, method and key within the
 * reuse window (so a fan-out to many syncers does not sign per delivery), and never past it.
 */
import t from 'tap'
import { OutboundAuth } from '../../src/auth/outbound.js'
import { ManualClock } from '../_helpers/clock.js'
import { Keypair } from '../../src/crypto/keypair.js'
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
  const out = new OutboundAuth(clock, 30)
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
  const out = new OutboundAuth(new ManualClock(0), 30)
  const first = await out.token(base)
  t.not(await out.token({ ...base, aud: 'did:web:other.test' }), first)
  t.not(await out.token({ ...base, lxm: 'x.y.other' }), first)
  t.not(await out.token({ ...base, key: Keypair.generate('secp256k1') }), first)
})

t.test('0 signs every call; a window as long as the token life is refused', async (t) => {
  const out = new OutboundAuth(new ManualClock(0), 0)
  t.not(await out.token(base), await out.token(base))
  t.throws(() => new OutboundAuth(new ManualClock(0), 60))
})

t.test('concurrent calls share one signature', async (t) => {
  const out = new OutboundAuth(new ManualClock(0), 30)
  // Each signature carries a random jti: equal tokens are one signature.
  const tokens = await Promise.all(Array.from({ length: 20 }, async () => out.token(base)))
  t.equal(new Set(tokens).size, 1)
})

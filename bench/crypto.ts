import { p256 } from '@noble/curves/nist.js'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import { utf8 } from '../src/crypto/encoding.js'
import { Keypair, libsecp256k1, verifySignature, verifyWithOpenSsl } from '../src/crypto/keypair.js'
import { signRequest, verifyRequestSignature } from '../src/crypto/request-signature.js'
import { createSpaceToken, parseSpaceToken, verifySpaceToken } from '../src/crypto/space-token.js'
import { opsPerSecond, type Bench } from './_lib.js'

/**
 * Raw signature costs and the cost of one complete credential exchange done in memory: verify the
 * delegation token (ES256K), verify the exchange request signature (P-256), sign the credential
 * (ES256K). That exchange rate is the bound the credential benchmark reports against.
 */

const MSG = utf8.encode('x'.repeat(400))

export interface ExchangeFixture {
  run(): Promise<void>
}

export function exchangeFixture(): ExchangeFixture {
  const user = Keypair.generate('secp256k1')
  const authority = Keypair.generate('secp256k1')
  const holder = Keypair.generate('p256')
  const now = Math.floor(Date.now() / 1000)
  const space = 'at://did:web:forum.example/space/com.example.forum/main'
  const token = createSpaceToken(
    'delegation',
    {
      iss: 'did:web:alice.example',
      sub: space,
      aud: 'did:web:forum.example#atproto_space_host',
      iat: now,
      exp: now + 60,
    },
    user,
  )
  const authorization = `Bearer ${token}`
  const headers: Record<string, string> = {
    authorization,
    ...signRequest({ form: 'exchange', authorization, key: holder }),
  }
  const lookup = (name: string) => (headers[name] === undefined ? [] : [headers[name]!])
  const userKey = { curve: 'secp256k1' as const, publicKey: user.publicKey }
  return {
    async run() {
      const parsed = parseSpaceToken('delegation', token, now)
      await verifySpaceToken(parsed, {
        nowSec: now,
        expectedAud: 'did:web:forum.example#atproto_space_host',
        getSigningKey: async () => userKey,
      })
      const { keyDid } = verifyRequestSignature(lookup, 'exchange', { nowSec: now })
      createSpaceToken(
        'credential',
        {
          iss: 'did:web:forum.example',
          sub: space,
          cnf: { kid: keyDid },
          iat: now,
          exp: now + 600,
        },
        authority,
      )
    },
  }
}

/** Complete in-memory exchanges per second: the bound for bench/credential.ts. */
export async function measureExchangeBound(seconds: number): Promise<number> {
  const f = exchangeFixture()
  return opsPerSecond(() => f.run(), seconds)
}

const bench: Bench = {
  name: 'crypto',
  async run({ seconds }) {
    const per = Math.max(0.5, seconds / 2)
    const k1 = Keypair.generate('secp256k1')
    const r1 = Keypair.generate('p256')
    const k1Sig = k1.sign(MSG)
    const r1Sig = r1.sign(MSG)
    const verifyK1 = await opsPerSecond(
      () => verifySignature('secp256k1', k1.publicKey, MSG, k1Sig, { allowHighS: false }),
      per,
    )
    const verifyR1 = await opsPerSecond(
      () => verifySignature('p256', r1.publicKey, MSG, r1Sig, { allowHighS: true }),
      per,
    )
    const signK1 = await opsPerSecond(() => k1.sign(MSG), per)
    const signR1 = await opsPerSecond(() => r1.sign(MSG), per)
    // Baseline: the same verifications in pure JS (noble), which Gatehouse used before.
    const jsK1 = await opsPerSecond(
      () => secp256k1.verify(k1Sig, MSG, k1.publicKey, { prehash: true }),
      per,
    )
    const sslK1 = await opsPerSecond(
      () => verifyWithOpenSsl('secp256k1', k1.publicKey, MSG, k1Sig, { allowHighS: false }),
      per,
    )
    const jsR1 = await opsPerSecond(
      () => p256.verify(r1Sig, MSG, r1.publicKey, { prehash: true, lowS: false }),
      per,
    )
    const exchange = await measureExchangeBound(seconds)
    const k1Backend = libsecp256k1 ? 'libsecp256k1' : 'OpenSSL'
    const partsBound = 1 / (1 / verifyK1 + 1 / verifyR1 + 1 / signK1)
    return {
      bench: 'crypto',
      figures: [
        { name: `ES256K verify (${k1Backend})`, value: verifyK1, unit: 'ops/s' },
        { name: 'ES256K verify, OpenSSL', value: sslK1, unit: 'ops/s' },
        { name: 'P-256 verify', value: verifyR1, unit: 'ops/s' },
        { name: 'ES256K sign (low-S)', value: signK1, unit: 'ops/s' },
        { name: 'ES256 sign (low-S)', value: signR1, unit: 'ops/s' },
        { name: 'ES256K verify, pure JS baseline', value: jsK1, unit: 'ops/s' },
        { name: 'P-256 verify, pure JS baseline', value: jsR1, unit: 'ops/s' },
        { name: 'exchange (delegation + signature + credential)', value: exchange, unit: 'ops/s' },
      ],
      ratios: {
        [`ES256K verify: ${k1Backend} / pure JS`]: verifyK1 / jsK1,
        [`ES256K verify: ${k1Backend} / OpenSSL`]: verifyK1 / sslK1,
        'P-256 verify: node:crypto / pure JS': verifyR1 / jsR1,
        'exchange / its three signature operations alone': exchange / partsBound,
      },
      notes: ['exchange ops/s is the bound bench/credential.ts measures itself against'],
    }
  },
}
export default bench

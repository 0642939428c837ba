/**
 * Pure crypto, unit level: round-trips for every key, token and signature form first, then the rules
 * the HTTP suites do not reach (structured-field edge cases, `expires`, labeler keys, ES256 tokens).
 */
import { createHash } from 'node:crypto'
import t from 'tap'
import { p256 } from '@noble/curves/nist.js'
import { secp256k1 } from '@noble/curves/secp256k1.js'
import {
  formatDidKey,
  parseDidKey,
  parseMultikey,
  KeyFormatError,
} from '../../src/crypto/did-key.js'
import { newSecretCode } from '../../src/crypto/encoding.js'
import { TokenError, SignatureError } from '../../src/crypto/errors.js'
import { parseJws, signJws, verifyJws, MAX_TOKEN_LENGTH } from '../../src/crypto/jws.js'
import {
  Keypair,
  libsecp256k1,
  signWithNoble,
  usesLibsecp256k1,
  verifySignature,
  verifySignatureAsync,
  verifyWithLibsecp256k1,
  verifyWithOpenSsl,
} from '../../src/crypto/keypair.js'
import {
  signRequest,
  verifyRequestSignature,
  verifyRequestSignatureAsync,
  type HeaderLookup,
} from '../../src/crypto/request-signature.js'
import { createServiceJwt, verifyServiceJwt } from '../../src/crypto/service-auth.js'
import {
  createSpaceToken,
  randomJti,
  parseSpaceToken,
  verifySpaceToken,
} from '../../src/crypto/space-token.js'
import {
  parseDictionary,
  serializeInnerList,
  isInnerList,
  StructuredFieldError,
} from '../../src/crypto/structured-fields.js'
import { fromBase64Url } from '../../src/crypto/encoding.js'
import { publicKeyObject } from '../../src/crypto/key-object.js'
import { highS } from '../_helpers/tamper.js'

const NOW = 1_800_000_000
const lookup =
  (h: Record<string, string | string[]>): HeaderLookup =>
  (name) => {
    const v = h[name]
    return v === undefined ? [] : Array.isArray(v) ? v : [v]
  }

t.test('did:key round-trips for both curves; other codecs are refused', async (t) => {
  for (const curve of ['secp256k1', 'p256'] as const) {
    const k = Keypair.generate(curve)
    const parsed = parseDidKey(k.did())
    t.equal(parsed.curve, curve)
    t.same([...parsed.publicKey], [...k.publicKey])
    t.equal(formatDidKey(curve, parsed.publicKey), k.did())
    t.match(k.did(), curve === 'secp256k1' ? /^did:key:zQ3s/ : /^did:key:zDn/)
  }
  t.throws(
    () => parseDidKey('did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK'),
    KeyFormatError,
    'ed25519',
  )
  t.throws(() => parseMultikey('mNotBase58'), KeyFormatError)
  t.throws(() => parseDidKey('did:web:example.com'), KeyFormatError)
})

t.test('keypairs never reveal their secret in JSON or inspection', async (t) => {
  const k = Keypair.generate('secp256k1')
  const secretHex = Buffer.from(k.exportSecretKey()).toString('hex')
  t.notMatch(JSON.stringify({ k }), secretHex)
  const { inspect } = await import('node:util')
  t.notMatch(inspect(k, { depth: 5 }), secretHex)
})

t.test('signatures are always low-S; high-S verifies only when allowed', async (t) => {
  for (const curve of ['secp256k1', 'p256'] as const) {
    const k = Keypair.generate(curve)
    const token = signJws({ typ: 'JWT' }, { n: 1 }, k)
    for (let i = 0; i < 20; i++) {
      const sig = parseJws(signJws({ typ: 'JWT' }, { n: i }, k)).signature
      const s = BigInt(`0x${Buffer.from(sig.subarray(32)).toString('hex')}`)
      const n =
        curve === 'secp256k1'
          ? 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n
          : 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n
      t.ok(s <= n / 2n, `${curve} signature ${i} is low-S`)
    }
    const high = parseJws(highS(token, curve))
    t.notOk(await verifyJws(high, { curve, publicKey: k.publicKey }, { allowHighS: false }))
    t.ok(await verifyJws(high, { curve, publicKey: k.publicKey }, { allowHighS: true }))
  }
})

t.test('ES256K signed by libsecp256k1: the very bytes noble makes (RFC 6979, low S)', async (t) => {
  t.ok(usesLibsecp256k1('secp256k1'), 'the binding signs ES256K on this platform')
  t.notOk(usesLibsecp256k1('p256'))
  const messages = [new Uint8Array(0), new Uint8Array([0]), new Uint8Array(5000).fill(0xff)]
  for (let i = 0; i < 300; i++)
    messages.push(new Uint8Array(createHash('sha256').update(`m${i}`).digest()))
  for (const [i, m] of messages.entries()) {
    const key = Keypair.generate('secp256k1')
    const native = key.sign(m)
    const noble = signWithNoble('secp256k1', m, key.exportSecretKey())
    if (Buffer.compare(native, noble) !== 0) t.fail(`message ${i}: libsecp256k1 and noble differ`)
    if (!secp256k1.verify(native, m, key.publicKey, { prehash: true, lowS: true }))
      t.fail(`message ${i}: noble refuses libsecp256k1's signature`)
  }
  t.pass(`${messages.length} signatures, byte for byte`)
  const key = Keypair.generate('p256')
  const m = new Uint8Array([1, 2, 3])
  t.same(
    Buffer.from(key.sign(m)),
    Buffer.from(signWithNoble('p256', m, key.exportSecretKey())),
    'P-256 is noble',
  )
})

t.test('jtis: 128 random bits as hex, never repeated across refills of their buffer', async (t) => {
  const ids = Array.from({ length: 1000 }, () => randomJti())
  t.ok(
    ids.every((id) => /^[0-9a-f]{32}$/.test(id)),
    'each is 32 hex digits',
  )
  t.equal(new Set(ids).size, ids.length, 'all distinct (1,000 spans several refills)')
})

t.test('JWS parsing is strict', async (t) => {
  const k = Keypair.generate('p256')
  const good = signJws({ typ: 'JWT' }, { a: 1 }, k)
  t.ok(
    await verifyJws(
      parseJws(good),
      { curve: 'p256', publicKey: k.publicKey },
      { allowHighS: false },
    ),
  )
  t.notOk(
    await verifyJws(
      parseJws(good),
      { curve: 'secp256k1', publicKey: Keypair.generate('secp256k1').publicKey },
      { allowHighS: true },
    ),
    'curve must match alg',
  )
  const [h, p, s] = good.split('.') as [string, string, string]
  for (const bad of [
    '',
    'a.b',
    `${h}.${p}`,
    `${h}.${p}.${s}.x`,
    `${h}=.${p}.${s}`,
    `${h}.${p}.${s}+`,
    `${Buffer.from('[1]').toString('base64url')}.${p}.${s}`,
    'x'.repeat(MAX_TOKEN_LENGTH + 1),
  ]) {
    t.throws(() => parseJws(bad), TokenError)
  }
  t.same([...fromBase64Url('QQ')!], [65])
  t.equal(fromBase64Url('QR'), undefined, 'non-canonical trailing bits')
})

t.test('space tokens round-trip with ES256K and ES256 issuers', async (t) => {
  for (const curve of ['secp256k1', 'p256'] as const) {
    const issuer = Keypair.generate(curve)
    const holder = Keypair.generate('p256')
    const space = 'at://did:web:forum.example/space/com.example.forum/main'
    const token = createSpaceToken(
      'credential',
      {
        iss: 'did:web:forum.example',
        sub: space,
        cnf: { kid: holder.did() },
        iat: NOW,
        exp: NOW + 600,
      },
      issuer,
    )
    const parsed = parseSpaceToken('credential', token, NOW)
    t.same(parsed.space, {
      authority: 'did:web:forum.example',
      spaceType: 'com.example.forum',
      skey: 'main',
    })
    t.match(parsed.claims.jti, /^[0-9a-f]{32}$/)
    await verifySpaceToken(parsed, {
      nowSec: NOW,
      getSigningKey: async () => ({ curve, publicKey: issuer.publicKey }),
    })
    t.pass(`${curve} credential verifies`)
  }
})

t.test('a signature failure refetches the key exactly once', async (t) => {
  const oldKey = Keypair.generate('secp256k1')
  const newKey = Keypair.generate('secp256k1')
  const token = createSpaceToken(
    'delegation',
    {
      iss: 'did:web:u.example',
      sub: 'at://did:web:a.example/space/x.y.z/k',
      aud: 'did:web:a.example#atproto_space_host',
      exp: NOW + 60,
    },
    newKey,
  )
  const calls: boolean[] = []
  await verifySpaceToken(parseSpaceToken('delegation', token, NOW), {
    nowSec: NOW,
    getSigningKey: async (_iss, _kid, force) => {
      calls.push(force)
      return { curve: 'secp256k1', publicKey: (force ? newKey : oldKey).publicKey }
    },
  })
  t.same(calls, [false, true])
  const forged = createSpaceToken(
    'delegation',
    {
      iss: 'did:web:u.example',
      sub: 'at://did:web:a.example/space/x.y.z/k',
      aud: 'x',
      exp: NOW + 60,
    },
    Keypair.generate('secp256k1'),
  )
  calls.length = 0
  const err = await verifySpaceToken(parseSpaceToken('delegation', forged, NOW), {
    nowSec: NOW,
    getSigningKey: async (_i, _k, force) => (
      calls.push(force),
      { curve: 'secp256k1', publicKey: oldKey.publicKey }
    ),
  }).catch((e: unknown) => e)
  t.match(err, { code: 'BadJwtSignature' })
  t.same(calls, [false, true], 'still only one refetch')
})

t.test('request signatures: the thread-pool check agrees with the synchronous one', async (t) => {
  const key = Keypair.generate('p256')
  const authorization = 'Bearer abc.def.ghi'
  const good = { authorization, ...signRequest({ form: 'exchange', authorization, key }) }
  const opts = { nowSec: NOW }
  t.equal((await verifyRequestSignatureAsync(lookup(good), 'exchange', opts)).keyDid, key.did())
  // Another request's signature (valid bytes, wrong base): refused by both, with the same error.
  const other = signRequest({ form: 'exchange', authorization: 'Bearer x.y.z', key })
  const forged = { ...good, signature: other['signature'] }
  t.throws(() => verifyRequestSignature(lookup(forged), 'exchange', opts), /does not verify/)
  await t.rejects(verifyRequestSignatureAsync(lookup(forged), 'exchange', opts), /does not verify/)
  // Anything but the signature bytes is refused before the promise: synchronously.
  const noKey = { ...good, 'signature-input': 'atproto-space=("authorization")' }
  t.throws(() => verifyRequestSignatureAsync(lookup(noKey), 'exchange', opts), /keyid/)
})

t.test('request signatures: both forms round-trip; expires is honoured', async (t) => {
  const key = Keypair.generate('p256')
  const authorization = 'Bearer abc.def.ghi'
  const ex = signRequest({ form: 'exchange', authorization, key })
  t.match(ex['signature-input'], /^atproto-space=\("authorization"\);keyid="did:key:zDn[^"]+"$/)
  t.equal(
    verifyRequestSignature(lookup({ authorization, ...ex }), 'exchange', { nowSec: NOW }).keyDid,
    key.did(),
  )

  const cred = 'Atproto-Space abc.def.ghi'
  const pr = signRequest({
    form: 'presentation',
    authorization: cred,
    audience: 'did:web:a.example',
    key,
  })
  t.equal(pr['signature-input'], 'atproto-space=("authorization" "atproto-space-audience")')
  const v = verifyRequestSignature(
    lookup({ authorization: cred, 'atproto-space-audience': 'did:web:a.example', ...pr }),
    'presentation',
    { nowSec: NOW, boundKeyDid: key.did() },
  )
  t.equal(v.audience, 'did:web:a.example')

  const timed = signRequest({
    form: 'exchange',
    authorization,
    key,
    extraParams: [
      ['created', NOW],
      ['expires', NOW + 30],
    ],
  })
  t.ok(
    verifyRequestSignature(lookup({ authorization, ...timed }), 'exchange', { nowSec: NOW + 30 }),
  )
  t.throws(
    () =>
      verifyRequestSignature(lookup({ authorization, ...timed }), 'exchange', { nowSec: NOW + 31 }),
    SignatureError,
  )

  const others = {
    authorization,
    'signature-input': `sig1=("@method");keyid="x", ${ex['signature-input']}`,
    signature: `sig1=:AAAA:, ${ex.signature}`,
  }
  t.ok(
    verifyRequestSignature(lookup(others), 'exchange', { nowSec: NOW }),
    'other labels are ignored',
  )
  const unknownParam = signRequest({
    form: 'exchange',
    authorization,
    key,
    extraParams: [['weird', 1]],
  })
  t.throws(
    () =>
      verifyRequestSignature(lookup({ authorization, ...unknownParam }), 'exchange', {
        nowSec: NOW,
      }),
    /unsupported signature parameter/,
  )
  t.throws(
    () =>
      verifyRequestSignature(
        lookup({ authorization: [authorization, authorization], ...ex }),
        'exchange',
        { nowSec: NOW },
      ),
    /more than one/,
  )
})

t.test('structured fields: dictionaries, inner lists, parameters, byte sequences', async (t) => {
  const d = parseDictionary('a=("x" "y");k="v";n=12, b=:AQID:, c, d=?0;p=tok/en')
  const a = d.get('a')!
  t.ok(isInnerList(a))
  if (isInnerList(a)) t.equal(serializeInnerList(a), '("x" "y");k="v";n=12')
  t.same([...(d.get('b') as { value: Uint8Array }).value], [1, 2, 3])
  t.equal((d.get('c') as { value: boolean }).value, true)
  t.match(d.get('d'), { value: false, params: [['p', { token: 'tok/en' }]] })
  t.equal(
    parseDictionary('a=1, a=2').get('a')!.hasOwnProperty('value') &&
      (parseDictionary('a=1, a=2').get('a') as { value: number }).value,
    2,
    'last duplicate wins',
  )
  for (const bad of ['a=("x"', 'A=1', 'a=1,', 'a="\\x"', 'a=:!!:', 'a=1 b=2', 'a="é"']) {
    t.throws(() => parseDictionary(bad), StructuredFieldError, bad)
  }
})

t.test('service JWTs: round-trip, labeler key, iss forms', async (t) => {
  const k = Keypair.generate('secp256k1')
  const jwt = createServiceJwt({
    iss: 'did:web:a.example',
    aud: 'did:web:b.example',
    lxm: 'x.y.z',
    key: k,
    nowSec: NOW,
  })
  const kids: string[] = []
  const claims = await verifyServiceJwt(jwt, {
    nowSec: NOW,
    lxm: 'x.y.z',
    aud: ['did:web:b.example'],
    getSigningKey: async (_d, kid) => (
      kids.push(kid),
      { curve: 'secp256k1', publicKey: k.publicKey }
    ),
  })
  t.match(claims, {
    iss: 'did:web:a.example',
    aud: 'did:web:b.example',
    lxm: 'x.y.z',
    exp: NOW + 60,
  })
  t.same(kids, ['#atproto'])
  const labeler = createServiceJwt({
    iss: 'did:web:a.example#atproto_labeler',
    aud: 'did:web:b.example',
    lxm: 'x.y.z',
    key: k,
    nowSec: NOW,
  })
  kids.length = 0
  await verifyServiceJwt(labeler, {
    nowSec: NOW,
    lxm: 'x.y.z',
    getSigningKey: async (_d, kid) => (
      kids.push(kid),
      { curve: 'secp256k1', publicKey: k.publicKey }
    ),
  })
  t.same(kids, ['#atproto_label'])
  const badIss = createServiceJwt({
    iss: 'did:web:a.example#x#y',
    aud: 'b',
    lxm: 'x.y.z',
    key: k,
    nowSec: NOW,
  })
  await t.rejects(
    verifyServiceJwt(badIss, { nowSec: NOW, lxm: 'x.y.z', getSigningKey: async () => undefined }),
    { code: 'BadJwtIss' },
  )
  t.ok(
    verifySignature('secp256k1', k.publicKey, new Uint8Array([1]), k.sign(new Uint8Array([1])), {
      allowHighS: false,
    }),
  )
})

t.test('ES256K: libsecp256k1 and OpenSSL give the same answer to every signature', async (t) => {
  // The native binding ships prebuilt for linux-x64; if it stopped loading, ES256K would quietly
  // fall back to OpenSSL at a fifth of the speed.
  t.ok(libsecp256k1, 'the libsecp256k1 binding loads on this platform')
  const n = secp256k1.Point.CURVE().n
  const hex32 = (v: bigint) => Buffer.from(v.toString(16).padStart(64, '0'), 'hex')
  const k = Keypair.generate('secp256k1')
  const msg = new Uint8Array([1, 2, 3])
  const sig = k.sign(msg)
  const s = BigInt(`0x${Buffer.from(sig.subarray(32)).toString('hex')}`)
  const withS = (v: bigint) => Uint8Array.from([...sig.subarray(0, 32), ...hex32(v)])
  const withR = (v: bigint) => Uint8Array.from([...hex32(v), ...sig.subarray(32)])
  const tampered = Uint8Array.from(sig)
  tampered[5]! ^= 1
  const other = Keypair.generate('secp256k1')
  const offCurve = Uint8Array.from([2, ...new Uint8Array(32).fill(0xff)])
  const cases: [string, Uint8Array, Uint8Array, Uint8Array, boolean, boolean][] = [
    // name, key, message, signature, allowed with low-S only, allowed with high-S allowed
    ['valid', k.publicKey, msg, sig, true, true],
    ['high S', k.publicKey, msg, withS(n - s), false, true],
    ['other message', k.publicKey, new Uint8Array([9]), sig, false, false],
    ['other key', other.publicKey, msg, sig, false, false],
    ['tampered r', k.publicKey, msg, tampered, false, false],
    ['s = 0', k.publicKey, msg, withS(0n), false, false],
    ['r = 0', k.publicKey, msg, withR(0n), false, false],
    ['r = n', k.publicKey, msg, withR(n), false, false],
    ['s = n + s', k.publicKey, msg, withS(n + s), false, false],
    ['truncated', k.publicKey, msg, sig.subarray(0, 63), false, false],
    [
      'uncompressed key',
      secp256k1.Point.fromBytes(k.publicKey).toBytes(false), // the same key, 65 bytes
      msg,
      sig,
      false,
      false,
    ],
    ['not a point', offCurve, msg, sig, false, false],
    ['zero key', new Uint8Array(33), msg, sig, false, false],
  ]
  for (const [name, key, m, sg, lowOnly, highAllowed] of cases) {
    for (const [allowHighS, want] of [
      [false, lowOnly],
      [true, highAllowed],
    ] as const) {
      const opts = { allowHighS }
      const label = `${name} (allowHighS ${allowHighS})`
      t.equal(verifyWithLibsecp256k1('secp256k1', key, m, sg, opts), want, `libsecp256k1: ${label}`)
      t.equal(verifyWithOpenSsl('secp256k1', key, m, sg, opts), want, `OpenSSL: ${label}`)
      t.equal(verifySignature('secp256k1', key, m, sg, opts), want, `dispatch: ${label}`)
    }
  }
  t.same(sig, k.sign(msg), "verifying with high S allowed leaves the caller's signature as it was")
})

t.test(
  'key objects: every point of both curves imports as the same key, and no off-curve one',
  async (t) => {
    for (const [curve, impl] of [
      ['secp256k1', secp256k1],
      ['p256', p256],
    ] as const) {
      const { Fp } = impl.Point
      for (let i = 0; i < 20; i++) {
        const k = Keypair.generate(curve)
        const jwk = publicKeyObject(curve, k.publicKey).export({ format: 'jwk' })
        const point = impl.Point.fromBytes(k.publicKey).toBytes(false)
        if (
          jwk.x !== Buffer.from(point.subarray(1, 33)).toString('base64url') ||
          jwk.y !== Buffer.from(point.subarray(33)).toString('base64url')
        )
          t.fail(`${curve}: key ${i} imported as another point`)
      }
      // x with no y on the curve, and x not below the field's prime.
      let x = 1n
      const rhs = (v: bigint) =>
        Fp.add(Fp.add(Fp.mul(Fp.sqr(v), v), Fp.mul(impl.Point.CURVE().a, v)), impl.Point.CURVE().b)
      for (; ; x++) {
        try {
          Fp.sqrt(rhs(x))
        } catch {
          break
        }
      }
      const bad = [
        Uint8Array.from([2, ...Buffer.from(x.toString(16).padStart(64, '0'), 'hex')]),
        Uint8Array.from([3, ...new Uint8Array(32).fill(0xff)]),
      ]
      const k = Keypair.generate(curve)
      const msg = new Uint8Array([1])
      const sig = k.sign(msg)
      for (const [i, key] of bad.entries()) {
        t.throws(() => publicKeyObject(curve, key), `${curve}: off-curve point ${i} is refused`)
        t.equal(verifyWithOpenSsl(curve, key, msg, sig, { allowHighS: true }), false)
        t.equal(await verifySignatureAsync(curve, key, msg, sig, { allowHighS: true }), false)
      }
    }
  },
)

t.test('signature checks on the thread pool agree with the synchronous ones', async (t) => {
  for (const curve of ['secp256k1', 'p256'] as const) {
    const k = Keypair.generate(curve)
    const msg = new Uint8Array([1, 2, 3])
    const sig = k.sign(msg)
    const s = BigInt(`0x${Buffer.from(sig.subarray(32)).toString('hex')}`)
    const n = curve === 'secp256k1' ? secp256k1.Point.CURVE().n : p256.Point.CURVE().n
    const high = new Uint8Array(sig)
    high.set(Buffer.from((n - s).toString(16).padStart(64, '0'), 'hex'), 32)
    const tampered = new Uint8Array(sig)
    tampered[5]! ^= 1
    const cases: [string, Uint8Array, Uint8Array, boolean][] = [
      ['valid', msg, sig, true],
      ['other message', new Uint8Array([9]), sig, false],
      ['tampered', msg, tampered, false],
      ['high-S refused', msg, high, false],
      ['truncated', msg, sig.subarray(0, 63), false],
    ]
    for (const [name, m, sg, want] of cases) {
      const opts = { allowHighS: false }
      t.equal(verifySignature(curve, k.publicKey, m, sg, opts), want, `${curve} ${name} (sync)`)
      t.equal(await verifySignatureAsync(curve, k.publicKey, m, sg, opts), want, `${curve} ${name}`)
    }
    t.equal(await verifySignatureAsync(curve, k.publicKey, msg, high, { allowHighS: true }), true)
    t.equal(
      await verifySignatureAsync(curve, new Uint8Array(33), msg, sig, { allowHighS: true }),
      false,
      'not a point',
    )
  }
})

t.test(
  'an invite code is 160 random bits of lowercase base32: never an option to a CLI',
  async (t) => {
    const codes = Array.from({ length: 4000 }, () => newSecretCode())
    t.ok(
      codes.every((c) => /^[a-z2-7]{32}$/.test(c)),
      'every code is 32 characters of a-z2-7, so none starts with "-"',
    )
    t.equal(new Set(codes).size, codes.length, 'all distinct')
    t.equal(new Set(codes.map((c) => c[0])).size, 32, 'the first character takes all 32 values')
    t.equal(new Set(codes.map((c) => c[31])).size, 32, 'and so does the last (no padding bits)')
  },
)

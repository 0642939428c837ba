import { Keypair } from '../../src/crypto/keypair.js'
import { signRequest } from '../../src/crypto/request-signature.js'
import { createServiceJwt } from '../../src/crypto/service-auth.js'
import { createSpaceToken, type Confirmation } from '../../src/crypto/space-token.js'
import type { Actor } from './identities.js'

/** Client-side behaviour, done the way real peers do it: mint tokens, sign requests. */

export function authorityOf(space: string): string {
  return space.split('/')[2]!
}

/** What a user's PDS mints for getSpaceCredential. */
export function delegationToken(opts: {
  user: Actor
  space: string
  nowSec: number
  aud?: string
  exp?: number
  jti?: string
  kid?: string
}): string {
  return createSpaceToken(
    'delegation',
    {
      iss: opts.user.did,
      sub: opts.space,
      aud: opts.aud ?? `${authorityOf(opts.space)}#atproto_space_host`,
      iat: opts.nowSec,
      exp: opts.exp ?? opts.nowSec + 60,
      jti: opts.jti,
    },
    opts.user.key,
    opts.kid,
  )
}

/** Headers for getSpaceCredential: the delegation token plus an exchange signature by `holderKey`. */
export function exchangeHeaders(token: string, holderKey: Keypair): Record<string, string> {
  const authorization = `Bearer ${token}`
  return { authorization, ...signRequest({ form: 'exchange', authorization, key: holderKey }) }
}

/** A space credential as an authority mints it. */
export function spaceCredential(opts: {
  authority: Actor
  space: string
  nowSec: number
  cnf?: Confirmation | null
  ttlSec?: number
  iat?: number
  iss?: string
  jti?: string
  kid?: string
}): string {
  const iat = opts.iat ?? opts.nowSec
  return createSpaceToken(
    'credential',
    {
      iss: opts.iss ?? opts.authority.did,
      sub: opts.space,
      ...(opts.cnf === null ? {} : { cnf: opts.cnf }),
      iat,
      exp: iat + (opts.ttlSec ?? 600),
      jti: opts.jti,
    },
    opts.authority.key,
    opts.kid,
  )
}

/** Headers for presenting a credential to `audience`, signed by the holder's key. */
export function presentHeaders(
  credential: string,
  audience: string,
  holderKey: Keypair,
  opts: { includeKeyId?: boolean } = {},
): Record<string, string> {
  const authorization = `Atproto-Space ${credential}`
  return {
    authorization,
    'atproto-space-audience': audience,
    ...signRequest({
      form: 'presentation',
      authorization,
      audience,
      key: holderKey,
      includeKeyId: opts.includeKeyId,
    }),
  }
}

export function serviceJwt(opts: {
  iss: Actor
  aud: string
  lxm: string
  nowSec: number
  ttlSec?: number
}): string {
  return createServiceJwt({
    iss: opts.iss.did,
    aud: opts.aud,
    lxm: opts.lxm,
    key: opts.iss.key,
    nowSec: opts.nowSec,
    ttlSec: opts.ttlSec,
  })
}

export function newHolderKey(): Keypair {
  return Keypair.generate('p256')
}

import type { Clock } from '../clock.js'
import { parseDidKey } from '../crypto/did-key.js'
import { DPOP_MAX_AGE_SEC, DPOP_SKEW_SEC, normalizeHtu, verifyDpopProof } from '../crypto/dpop.js'
import { SignatureError, TokenError } from '../crypto/errors.js'
import {
  AUDIENCE_HEADER,
  verifyRequestSignature,
  verifyRequestSignatureAsync,
  type HeaderLookup,
} from '../crypto/request-signature.js'
import { verifyServiceJwt } from '../crypto/service-auth.js'
import {
  CLOCK_SKEW_SEC,
  parseSpaceToken,
  verifySpaceToken,
  type ParsedSpaceToken,
} from '../crypto/space-token.js'
import { AuthRequiredError } from '../errors.js'
import type { DidResolver } from '../identity/resolver.js'
import { isDid, type SpaceRef } from '../lexicon/formats.js'
import type {
  AnonymousAuth,
  CredentialAuth,
  DelegationAuth,
  KeyBinding,
  RequestView,
  ServiceAuth,
  SpaceTokenFacts,
} from './output.js'
import { hostService } from './audience.js'
import type { ReplayStore } from './replay.js'
import type { RevocationStore } from './revocations.js'

// The one place requests are authenticated and crypto errors become 401s. Steps run in the
// contract's order: signature, bindings to this request, then single use, so a copy of a token
// without its key cannot burn its `jti`. Only an authenticated issuer is confirm()ed to the resolver.

export interface AuthVerifierDeps {
  resolver: DidResolver
  replay: ReplayStore
  revocations: RevocationStore
  clock: Clock
  /** Our public origin: DPoP `htu` is checked against it, not against the Host header. */
  publicUrl: string
  /** Accept generation A DPoP proofs as well as generation C request signatures. */
  acceptDpop: boolean
  /** When the space's current instance began (whole seconds); undefined when it has none. */
  spaceSinceSec(spaceUri: string): Promise<number | undefined>
}

/** Every value a header arrived with, from the raw header list (so repeats are visible). */
export function headerLookup(req: RequestView): HeaderLookup {
  return (name: string) => {
    const out: string[] = []
    const raw = req.rawHeaders
    for (let i = 0; i + 1 < raw.length; i += 2) {
      if (raw[i]!.toLowerCase() === name) out.push(raw[i + 1]!)
    }
    return out
  }
}

function facts(token: ParsedSpaceToken, binding: KeyBinding): SpaceTokenFacts {
  const { iss, sub, jti, exp } = token.claims
  return { iss, spaceUri: sub, space: token.space!, jti, exp, binding }
}

function translate(err: unknown): never {
  if (err instanceof TokenError || err instanceof SignatureError) {
    throw new AuthRequiredError(err.message, err.code)
  }
  throw err
}

/** `Scheme token` from the one Authorization header; several are ambiguous (`repeatedError`). */
function authorization(
  headers: HeaderLookup,
  repeatedError: string,
): { scheme: string; token: string } | undefined {
  const values = headers('authorization')
  if (values.length > 1)
    throw new AuthRequiredError('request has more than one Authorization header', repeatedError)
  if (values.length !== 1) return undefined
  const m = /^([A-Za-z][A-Za-z0-9-]*) +(\S+)$/.exec(values[0]!.trim())
  return m ? { scheme: m[1]!.toLowerCase(), token: m[2]! } : undefined
}

/** A check's outcome as a value, whether it throws at once or rejects later. */
function settled<T>(check: () => Promise<T>): Promise<{ value: T } | { error: unknown }> {
  try {
    return check().then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    )
  } catch (error) {
    return Promise.resolve({ error })
  }
}

export class AuthVerifier {
  constructor(private readonly deps: AuthVerifierDeps) {}

  private readonly getSigningKey = (did: string, kid: string, forceRefresh: boolean) =>
    this.deps.resolver.getKey(did, kid, forceRefresh)

  /** A generation A proof for this request; its `jti` is single use within the proof's lifetime. */
  private async dpopBinding(
    req: RequestView,
    headers: HeaderLookup,
    presented?: { token: string; jkt: string },
  ): Promise<KeyBinding> {
    const proofs = headers('dpop')
    if (proofs.length === 0)
      throw new SignatureError('MissingDpopProof', 'request requires a DPoP proof')
    if (proofs.length > 1)
      throw new SignatureError('BadDpopProof', 'request has more than one DPoP proof')
    const now = this.deps.clock.nowSec()
    const proof = await verifyDpopProof(proofs[0]!, {
      htm: req.method,
      htu: normalizeHtu(`${this.deps.publicUrl}${req.url.split('?', 1)[0]}`) ?? '',
      nowSec: now,
      accessToken: presented?.token,
      expectedJkt: presented?.jkt,
    })
    // Held for exactly as long as the proof could be accepted.
    const fresh = await this.deps.replay.consume(
      `dpop@${proof.jkt}`,
      proof.jti,
      new Date((proof.iat + DPOP_MAX_AGE_SEC + DPOP_SKEW_SEC) * 1000),
    )
    if (!fresh) throw new SignatureError('BadDpopProof', 'DPoP proof replayed')
    return { kind: 'dpop', jkt: proof.jkt }
  }

  /**
   * getSpaceCredential: a Bearer delegation token plus an exchange signature (generation A: a DPoP
   * proof). Its `jti` is spent here, so a later refusal still spends it (contract §1.1 step 3).
   */
  delegationToken = async (req: RequestView): Promise<DelegationAuth> => {
    try {
      const headers = headerLookup(req)
      const auth = authorization(headers, 'BadSpaceSignature')
      if (!auth || auth.scheme !== 'bearer')
        throw new AuthRequiredError('missing delegation token', 'MissingJwt')
      const now = this.deps.clock.nowSec()
      const token = parseSpaceToken('delegation', auth.token, now)
      const space = token.space!
      if (!isDid(token.claims.iss))
        throw new TokenError('BadJwtIss', 'delegation token "iss" must be a DID')
      // Both signatures are checked at once; their verdicts are taken in order, token first.
      const tokenChecked = verifySpaceToken(token, {
        nowSec: now,
        expectedAud: hostService(space.authority),
        getSigningKey: this.getSigningKey,
      }).catch((err: unknown) => {
        if (err instanceof TokenError && err.code === 'BadJwtAudience') {
          throw new TokenError(
            'BadJwtAudience',
            'delegation token audience does not match the space authority',
          )
        }
        throw err
      })
      let binding: KeyBinding
      const signed = headers('signature-input').length > 0 || headers('signature').length > 0
      // Generation A: a DPoP proof and no request signature.
      if (!signed && this.deps.acceptDpop && headers('dpop').length > 0) {
        await tokenChecked
        // Consumes the proof's jti: only once the token is known to be good.
        binding = await this.dpopBinding(req, headers)
      } else {
        const signature = settled(() =>
          verifyRequestSignatureAsync(headers, 'exchange', { nowSec: now }),
        )
        await tokenChecked
        const checked = await signature
        if ('error' in checked) throw checked.error
        binding = { kind: 'signature', keyDid: checked.value.keyDid }
      }
      // Held until the token expires (parseSpaceToken bounds `exp`).
      const fresh = await this.deps.replay.consume(
        `delegation@${token.claims.iss}`,
        token.claims.jti,
        new Date((token.claims.exp + CLOCK_SKEW_SEC) * 1000),
      )
      if (!fresh)
        throw new AuthRequiredError('delegation token has already been used', 'JwtReplayed')
      this.deps.resolver.confirm(token.claims.iss)
      return { type: 'delegation_token', ...facts(token, binding) }
    } catch (err) {
      return translate(err)
    }
  }

  /** A space credential (generation C `Atproto-Space`, A `DPoP`); the handler checks space and audience. */
  spaceCredential() {
    return async (req: RequestView): Promise<CredentialAuth> => {
      try {
        const headers = headerLookup(req)
        const auth = authorization(headers, 'BadSpaceSignature')
        const gen =
          auth?.scheme === 'atproto-space'
            ? 'C'
            : auth?.scheme === 'dpop' && this.deps.acceptDpop
              ? 'A'
              : null
        if (!auth || !gen) throw new AuthRequiredError('missing space credential', 'MissingJwt')
        const now = this.deps.clock.nowSec()
        const token = parseSpaceToken('credential', auth.token, now)
        await verifySpaceToken(token, { nowSec: now, getSigningKey: this.getSigningKey })
        const space = token.space!
        // Only the space's authority may issue credentials for it.
        if (token.claims.iss !== space.authority) {
          throw new TokenError('BadJwtIss', 'space credential issuer is not the space authority')
        }
        const { binding, audience } = await this.binding(req, headers, token, gen, auth.token, now)
        // Only for an active space: on any other the handler answers SpaceNotFound (§4.5).
        const since = await this.deps.spaceSinceSec(token.claims.sub)
        if (since !== undefined) {
          if (await this.deps.revocations.isRevoked(token.claims.sub, token.claims.jti)) {
            throw new AuthRequiredError('space credential has been revoked', 'CredentialRevoked')
          }
          // Issued before the current instance (a deletion's revocation missed in a crash): it
          // never passed this perimeter. The second of re-creation counts as the new instance's.
          if (token.claims.iat! < since) {
            throw new AuthRequiredError(
              'space credential was issued for a deleted instance of this space',
              'CredentialRevoked',
            )
          }
        }
        this.deps.resolver.confirm(token.claims.iss)
        return { type: 'space_credential', ...facts(token, binding), audience }
      } catch (err) {
        return translate(err)
      }
    }
  }

  /** The credential's presentation: a request signature with audience (C) or a DPoP proof (A). */
  private async binding(
    req: RequestView,
    headers: HeaderLookup,
    token: ParsedSpaceToken,
    gen: 'A' | 'C',
    raw: string,
    nowSec: number,
  ): Promise<{ binding: KeyBinding; audience: string | undefined }> {
    const cnf = token.claims.cnf!
    if (gen === 'A') {
      if (!('jkt' in cnf))
        throw new TokenError('BadJwtCnf', 'credential is not bound to a DPoP key')
      return {
        binding: await this.dpopBinding(req, headers, { token: raw, jkt: cnf.jkt }),
        audience: undefined,
      }
    }
    if (!('kid' in cnf))
      throw new TokenError('BadJwtCnf', 'credential is not bound to a signing key ("cnf.kid")')
    try {
      if (parseDidKey(cnf.kid).curve !== 'p256') throw new Error('not P-256')
    } catch {
      throw new TokenError('BadJwtCnf', 'credential "cnf.kid" must be a P-256 did:key')
    }
    const { audience } = verifyRequestSignature(headers, 'presentation', {
      nowSec,
      boundKeyDid: cnf.kid,
    })
    if (!audience || !isDid(audience)) {
      throw new AuthRequiredError(`${AUDIENCE_HEADER} must be a DID`, 'BadSpaceAudience')
    }
    return { binding: { kind: 'signature', keyDid: cnf.kid }, audience }
  }

  /** A space credential, or for `Bearer` service auth for `lxm` (getSpace: readers and managers). */
  credentialOrService(lxm: string) {
    const credential = this.spaceCredential()
    const service = this.serviceAuth(lxm)
    return async (req: RequestView): Promise<CredentialAuth | ServiceAuth> => {
      const scheme = headerLookup(req)('authorization')[0]?.split(' ', 1)[0]?.toLowerCase()
      return scheme === 'bearer' ? service(req) : credential(req)
    }
  }

  /** Member-list reads: no Authorization header is anonymous, else as `credentialOrService`. */
  rosterReader(lxm: string) {
    const authenticated = this.credentialOrService(lxm)
    return async (req: RequestView): Promise<CredentialAuth | ServiceAuth | AnonymousAuth> =>
      headerLookup(req)('authorization').length === 0 ? { type: 'anonymous' } : authenticated(req)
  }

  /** Service auth for `lxm` (Bearer); the audience is the handler's to check (auth/audience.ts). */
  serviceAuth(lxm: string) {
    return async (req: RequestView): Promise<ServiceAuth> => {
      try {
        const auth = authorization(headerLookup(req), 'BadJwt')
        if (!auth || auth.scheme !== 'bearer')
          throw new AuthRequiredError('missing service auth token', 'MissingJwt')
        const claims = await verifyServiceJwt(auth.token, {
          nowSec: this.deps.clock.nowSec(),
          lxm,
          getSigningKey: this.getSigningKey,
        })
        const { iss, aud, jti } = claims
        this.deps.resolver.confirm(iss.split('#', 1)[0]!)
        return { type: 'service_auth', iss, aud, lxm: claims.lxm, jti }
      } catch (err) {
        return translate(err)
      }
    }
  }
}

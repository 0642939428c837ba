/**
 * The crypto core's two error families, each with a closed set of codes. Only src/auth/verifier.ts
 * turns these into XRPC errors (401 with the code as the error name).
 */

export type TokenErrorCode =
  | 'BadJwt'
  | 'BadJwtType'
  | 'BadJwtIss'
  | 'BadJwtSub'
  | 'BadJwtAudience'
  | 'BadJwtCnf'
  | 'BadJwtSignature'
  | 'BadJwtLexiconMethod'
  | 'JwtExpired'

export class TokenError extends Error {
  override name = 'TokenError'
  constructor(
    readonly code: TokenErrorCode,
    message: string,
  ) {
    super(message)
  }
}

export type SignatureErrorCode =
  | 'BadSpaceSignature'
  | 'MissingDpopProof'
  | 'BadDpopProof'
  | 'BadDpopProofSignature'
  | 'DpopProofExpired'
  | 'DpopKeyMismatch'

export class SignatureError extends Error {
  override name = 'SignatureError'
  constructor(
    readonly code: SignatureErrorCode,
    message: string,
  ) {
    super(message)
  }
}

/** The crypto core's two error families; only src/auth/verifier.ts turns them into XRPC 401s. */

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

export type SignatureErrorCode =
  | 'BadSpaceSignature'
  | 'MissingDpopProof'
  | 'BadDpopProof'
  | 'BadDpopProofSignature'
  | 'DpopProofExpired'
  | 'DpopKeyMismatch'

class CodedError<C extends string> extends Error {
  constructor(
    readonly code: C,
    message: string,
  ) {
    super(message)
  }
}

export class TokenError extends CodedError<TokenErrorCode> {
  override name = 'TokenError'
}

export class SignatureError extends CodedError<SignatureErrorCode> {
  override name = 'SignatureError'
}

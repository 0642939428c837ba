import { randomUUID } from 'node:crypto'
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose'

/** A generation A client's side of DPoP (RFC 9449): a P-256 proof key and proofs made with it. */

export interface DpopHolder {
  privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey']
  jwk: JWK
  /** RFC 7638 thumbprint: what a DPoP-bound credential's `cnf.jkt` names. */
  jkt: string
}

export async function dpopHolder(): Promise<DpopHolder> {
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  const jwk = await exportJWK(publicKey)
  return { privateKey, jwk, jkt: await calculateJwkThumbprint(jwk, 'sha256') }
}

export async function dpopProof(
  h: Pick<DpopHolder, 'privateKey' | 'jwk'>,
  claims: { htm: string; htu: string; iat: number; ath?: string; jti?: string },
): Promise<string> {
  return new SignJWT({
    htm: claims.htm,
    htu: claims.htu,
    ...(claims.ath ? { ath: claims.ath } : {}),
  })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: h.jwk })
    .setJti(claims.jti ?? randomUUID())
    .setIssuedAt(claims.iat)
    .sign(h.privateKey)
}

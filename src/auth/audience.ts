import { ForbiddenError } from '../errors.js'
import type { ServiceAuth } from './output.js'

/**
 * The audience rules of inbound service auth. The verifier leaves `aud` to the caller because the
 * expected value depends on the request (which space, which authority); these are the only places
 * that rule is written, so no caller can forget or loosen it.
 */

const HOST_SERVICE = '#atproto_space_host'

/** The two ways a service-auth `aud` names `did` as a space host: bare, or `{did}#atproto_space_host`. */
export function hostAudiences(did: string): [string, string] {
  return [did, `${did}${HOST_SERVICE}`]
}

/** The DID an `aud` names as a space host (the inverse of `hostAudiences`); not checked to be a DID. */
export function audienceDid(aud: string): string {
  return aud.endsWith(HOST_SERVICE) ? aud.slice(0, -HOST_SERVICE.length) : aud
}

/**
 * Is a service-auth call with this `aud` addressed to us — Gatehouse's own DID — or, when given, to
 * `authority` (each in either form of `hostAudiences`)? The one audience rule for every caller of a
 * management method: managers, the space's managing app, authority creators.
 */
export function isAddressedToHost(aud: string, serviceDid: string, authority?: string): boolean {
  return (
    hostAudiences(serviceDid).includes(aud) ||
    (authority !== undefined && hostAudiences(authority).includes(aud))
  )
}

/**
 * `isAddressedToHost`, or 403. Checked before anything about the caller or the space: a token minted
 * for another service must not work here, whoever minted it (else any service that receives one of
 * a manager's or managing app's tokens could replay it to us while it lives).
 */
export function assertAddressedToHost(
  auth: ServiceAuth,
  serviceDid: string,
  authority?: string,
): void {
  if (!isAddressedToHost(auth.aud, serviceDid, authority))
    throw new ForbiddenError('service auth is not addressed to this host')
}

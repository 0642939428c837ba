import { ForbiddenError } from '../errors.js'
import type { ServiceAuth } from './output.js'

// The audience rules of inbound service auth: the verifier leaves `aud` to the handler, because the
// expected value depends on the request (which space, which authority).

const HOST_SERVICE = '#atproto_space_host'

/** `{did}#atproto_space_host`: `did` as a space host (delegation tokens, attestations, generation C). */
export const hostService = (did: string) => `${did}${HOST_SERVICE}`

/** The DID an `aud` names as a space host (the inverse of `hostService`); not checked to be a DID. */
export function audienceDid(aud: string): string {
  return aud.endsWith(HOST_SERVICE) ? aud.slice(0, -HOST_SERVICE.length) : aud
}

/** Does `aud` name one of `dids` as a space host, bare (generation A) or as `hostService`? */
export function isAddressedTo(aud: string, ...dids: (string | undefined)[]): boolean {
  return dids.some((did) => did !== undefined && (aud === did || aud === hostService(did)))
}

/** 403 unless addressed to us or `authority`; checked first, so other services' tokens learn nothing. */
export function assertAddressedToHost(
  auth: ServiceAuth,
  serviceDid: string,
  authority?: string,
): void {
  if (!isAddressedTo(auth.aud, serviceDid, authority))
    throw new ForbiddenError('service auth is not addressed to this host')
}

import type { XrpcRouter } from '../../../method.js'
import getSpaceCredential from './getSpaceCredential.js'

/** com.atproto.space.*: the protocol methods a space host serves. */
export default function (router: XrpcRouter): void {
  getSpaceCredential(router)
}

import type { XrpcRouter } from '../../../method.js'
import getSpace from './getSpace.js'

/** com.atproto.simplespace.*: space management and configuration. */
export default function (router: XrpcRouter): void {
  getSpace(router)
}

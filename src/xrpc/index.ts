import gatehouse from './dev/gatehouse/index.js'
import simplespace from './com/atproto/simplespace/index.js'
import space from './com/atproto/space/index.js'
import type { XrpcRouter } from './method.js'

/** Registers every XRPC method (test/lexicons.test.ts checks each against lexicons/). */
export function registerXrpcMethods(router: XrpcRouter): void {
  space(router)
  simplespace(router)
  gatehouse(router)
}

import gatehouse from './dev/gatehouse/index.js'
import simplespace from './com/atproto/simplespace/index.js'
import space from './com/atproto/space/index.js'
import type { XrpcRouter } from './method.js'

/**
 * Registers every XRPC method Gatehouse serves. Each namespace's index.ts adds its methods; the
 * drift guard (test/lexicons.test.ts) checks each against lexicons/.
 */
export function registerXrpcMethods(router: XrpcRouter): void {
  space(router)
  simplespace(router)
  gatehouse(router)
}

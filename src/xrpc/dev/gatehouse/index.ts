import type { XrpcRouter } from '../../method.js'
import describeServer from './server/describeServer.js'
import revokeCredentials from './space/revokeCredentials.js'

/** Gatehouse's own extension methods (namespace dev.gatehouse.*). */
export default function (router: XrpcRouter): void {
  describeServer(router)
  revokeCredentials(router)
}

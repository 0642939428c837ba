import type { XrpcRouter } from '../../method.js'
import describeServer from './server/describeServer.js'

/** Gatehouse's own extension methods (namespace dev.gatehouse.*). */
export default function (router: XrpcRouter): void {
  describeServer(router)
}

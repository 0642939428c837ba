import type { XrpcRouter } from '../../method.js'
import describeServer from './server/describeServer.js'
import revokeCredentials from './space/revokeCredentials.js'
import getMemberState from './simplespace/getMemberState.js'
import listMemberOps from './simplespace/listMemberOps.js'
import setRosterVisibility from './simplespace/setRosterVisibility.js'
import importMembers from './simplespace/importMembers.js'
import exportMembers from './simplespace/exportMembers.js'
import listDeadLetters from './notify/listDeadLetters.js'

/** Gatehouse's own extension methods (namespace dev.gatehouse.*). */
export default function (router: XrpcRouter): void {
  describeServer(router)
  revokeCredentials(router)
  listMemberOps(router)
  getMemberState(router)
  setRosterVisibility(router)
  importMembers(router)
  exportMembers(router)
  listDeadLetters(router)
}

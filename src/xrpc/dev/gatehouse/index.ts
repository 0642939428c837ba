import type { XrpcRouter } from '../../method.js'
import describeServer from './server/describeServer.js'
import revokeCredentials from './space/revokeCredentials.js'
import acceptInvite from './space/acceptInvite.js'
import requestJoin from './space/requestJoin.js'
import getJoinRequest from './space/getJoinRequest.js'
import decideJoinRequest from './space/decideJoinRequest.js'
import getMemberState from './simplespace/getMemberState.js'
import listMemberOps from './simplespace/listMemberOps.js'
import setRosterVisibility from './simplespace/setRosterVisibility.js'
import importMembers from './simplespace/importMembers.js'
import exportMembers from './simplespace/exportMembers.js'
import listDeadLetters from './notify/listDeadLetters.js'
import createAuthority from './authority/createAuthority.js'
import adoptAuthority from './authority/adoptAuthority.js'
import activateAuthority from './authority/activateAuthority.js'
import deactivateAuthority from './authority/deactivateAuthority.js'
import rotateSigningKey from './authority/rotateSigningKey.js'
import rotateRotationKeys from './authority/rotateRotationKeys.js'
import transferAuthority from './authority/transferAuthority.js'
import getAuthority from './authority/getAuthority.js'
import updateAuthority from './authority/updateAuthority.js'

/** Gatehouse's own extension methods (namespace dev.gatehouse.*). */
export default function (router: XrpcRouter): void {
  describeServer(router)
  revokeCredentials(router)
  acceptInvite(router)
  requestJoin(router)
  getJoinRequest(router)
  decideJoinRequest(router)
  listMemberOps(router)
  getMemberState(router)
  setRosterVisibility(router)
  importMembers(router)
  exportMembers(router)
  listDeadLetters(router)
  createAuthority(router)
  adoptAuthority(router)
  activateAuthority(router)
  deactivateAuthority(router)
  rotateSigningKey(router)
  rotateRotationKeys(router)
  transferAuthority(router)
  getAuthority(router)
  updateAuthority(router)
}

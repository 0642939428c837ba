import type { XrpcRouter } from '../../../method.js'
import addMember from './addMember.js'
import createSpace from './createSpace.js'
import deleteSpace from './deleteSpace.js'
import getSpace from './getSpace.js'
import listMembers from './listMembers.js'
import putMember from './putMember.js'
import removeMember from './removeMember.js'
import updateSpace from './updateSpace.js'

/** com.atproto.simplespace.*: space management and configuration. */
export default function (router: XrpcRouter): void {
  createSpace(router)
  updateSpace(router)
  deleteSpace(router)
  getSpace(router)
  putMember(router)
  addMember(router)
  removeMember(router)
  listMembers(router)
}

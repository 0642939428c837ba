import type { XrpcRouter } from '../../../method.js'
import getSpaceCredential from './getSpaceCredential.js'
import listRepos from './listRepos.js'
import notifyWrite from './notifyWrite.js'
import registerNotify from './registerNotify.js'
import unregisterNotify from './unregisterNotify.js'

/** com.atproto.space.*: the protocol methods a space host serves. */
export default function (router: XrpcRouter): void {
  getSpaceCredential(router)
  notifyWrite(router)
  listRepos(router)
  registerNotify(router)
  unregisterNotify(router)
}

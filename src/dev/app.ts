import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { Config } from '../config.js'
import { CliUsageError, type Options } from '../cli/commands.js'
import { Keypair } from '../crypto/keypair.js'
import { signRequest } from '../crypto/request-signature.js'
import { createServiceJwt } from '../crypto/service-auth.js'
import { createSpaceToken } from '../crypto/space-token.js'
import { parseSpaceRef } from '../lexicon/formats.js'
import { nextTid } from '../spaces/tid.js'

export const DEV_USAGE =
  "gatehouse dev app SPACE [--port 2591] [--server URL] [--invite CODE | --join MESSAGE]   (development only: a member's app and PDS, end to end)"

const NOTIFY_WRITE = 'com.atproto.space.notifyWrite'
const ACCEPT_INVITE = 'dev.gatehouse.space.acceptInvite'
const REQUEST_JOIN = 'dev.gatehouse.space.requestJoin'

/**
 * Plays a member's app and PDS against a running Gatehouse: a throwaway `did:web:localhost%3A<port>`
 * (served here, its own syncer), a delegation token, the exchange, listRepos, registerNotify, a
 * notifyWrite and the notification it brings; each step a JSON line. With `--invite CODE` it first
 * accepts that invite (so a stranger becomes a member); with `--join MESSAGE` it only asks to join,
 * and stops there. Refused in production.
 */
export async function devApp(
  config: Config,
  [space]: string[],
  o: Options,
  out: (line: string) => void,
): Promise<void> {
  if (config.mode === 'production')
    throw new CliUsageError('gatehouse dev is refused when GATEHOUSE_ENV=production')
  const ref = parseSpaceRef(space ?? '')
  if (!ref) throw new CliUsageError('dev app needs SPACE (at://<authority>/space/<type>/<key>)')
  const port = Number(o.port ?? 2591)
  const server = (o.server ?? config.service.publicUrl).replace(/\/$/, '')
  const did = `did:web:localhost%3A${port}`
  const key = Keypair.generate('secp256k1')
  const holder = Keypair.generate('p256')
  const host = `${ref.authority}#atproto_space_host`
  const document = {
    '@context': ['https://www.w3.org/ns/did/v1', 'https://w3id.org/security/multikey/v1'],
    id: did,
    verificationMethod: [
      {
        id: `${did}#atproto`,
        type: 'Multikey',
        controller: did,
        publicKeyMultibase: key.multikey(),
      },
    ],
    service: [
      {
        id: '#atproto_space_syncer',
        type: 'AtprotoSpaceSyncer',
        serviceEndpoint: `http://localhost:${port}`,
      },
    ],
  }
  const http = createServer(async (req, res) => {
    const body = Buffer.concat(await req.toArray()).toString('utf8')
    if (req.url !== '/.well-known/did.json') {
      res.writeHead(200).end()
      return void http.emit('notification', { path: req.url, body: JSON.parse(body || 'null') })
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(document))
  })
  await once(http.listen(port, '127.0.0.1'), 'listening')
  const step = (name: string, fields: object) => out(JSON.stringify({ step: name, ...fields }))
  const call = async (nsid: string, headers: Record<string, string>, body?: object) => {
    const query = body ? '' : `?${new URLSearchParams({ space: space! })}`
    const url = `${server}/xrpc/${nsid}${query}`
    const res = await fetch(url, {
      method: body ? 'POST' : 'GET',
      headers: body ? { ...headers, 'content-type': 'application/json' } : headers,
      body: body && JSON.stringify(body),
    }).catch((err: Error) => {
      throw new Error(`${url}: ${(err.cause as Error | undefined)?.message ?? err.message}`)
    })
    const text = await res.text()
    const got = { status: res.status, body: text ? (JSON.parse(text) as unknown) : undefined }
    step(nsid, { sent: { url, headers, body }, got })
    if (!res.ok) throw new Error(`${nsid} answered ${res.status}: ${text}`)
    return got.body as Record<string, unknown> | undefined
  }
  /** Service auth signed by the member itself (accepting, asking), addressed to the space host. */
  const asMember = (lxm: string) => ({
    authorization: `Bearer ${createServiceJwt({ iss: did, aud: host, lxm, key, nowSec: Math.floor(Date.now() / 1000) })}`,
  })
  try {
    step('identity', { did, document })
    if (o.join !== undefined) {
      await call(REQUEST_JOIN, asMember(REQUEST_JOIN), { space, message: o.join })
      return
    }
    if (o.invite !== undefined)
      await call(ACCEPT_INVITE, asMember(ACCEPT_INVITE), { code: o.invite })
    const nowSec = Math.floor(Date.now() / 1000)
    const claims = { iss: did, sub: space!, aud: host, iat: nowSec, exp: nowSec + 60 }
    const bearer = `Bearer ${createSpaceToken('delegation', claims, key)}`
    const exchange = signRequest({ form: 'exchange', authorization: bearer, key: holder })
    const exchanged = await call(
      'com.atproto.space.getSpaceCredential',
      { authorization: bearer, ...exchange },
      { space },
    )
    const authorization = `Atproto-Space ${String(exchanged?.credential)}`
    const presentation = {
      authorization,
      'atproto-space-audience': ref.authority,
      ...signRequest({ form: 'presentation', authorization, audience: ref.authority, key: holder }),
    }
    await call('com.atproto.space.listRepos', presentation)
    await call('com.atproto.space.registerNotify', presentation, {
      space,
      service: `${did}#atproto_space_syncer`,
    })
    const hash = { $bytes: randomBytes(32).toString('base64').replace(/=+$/, '') }
    await call(NOTIFY_WRITE, asMember(NOTIFY_WRITE), {
      space,
      repo: did,
      repoRev: nextTid(Date.now()),
      hash,
    })
    const [got] = await once(http, 'notification', { signal: AbortSignal.timeout(30_000) })
    step('notification received', { got })
  } finally {
    http.closeAllConnections()
    http.close()
  }
}

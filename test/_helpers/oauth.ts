import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { lookup as dnsLookup, type LookupAddress } from 'node:dns'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { connect, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer } from 'node:tls'
import { PDS, envToCfg, envToSecrets } from '@atproto/pds'
import { Agent, getGlobalDispatcher, request, setGlobalDispatcher } from 'undici'
import { Keypair } from '../../src/crypto/keypair.js'
import { TestArbiter, type TestLike } from './arbiter.js'
import { PlcDirectory } from './identities.js'
import { freePort } from './process.js'
import { registerAuthority } from './spaces.js'

/**
 * A real atproto authorization server for manager-login tests: @atproto/pds (the Node 20 line) on
 * loopback against the in-process PLC directory, plus what a confidential client needs to be
 * reachable by it. The provider insists on an https client_id on a public-looking name, so
 * Gatehouse is fronted by a TLS proxy on `gatehouse.internal`, which this process's global
 * dispatcher (the one the PDS's fetch uses) resolves to 127.0.0.1 and trusts.
 */

export const GATEHOUSE_HOST = 'gatehouse.internal'

export interface PdsAccount {
  did: string
  handle: string
  password: string
}

export class TestPds {
  private constructor(
    readonly url: string,
    private readonly pds: PDS,
  ) {}

  static async start(t: TestLike, plc: PlcDirectory): Promise<TestPds> {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-pds-'))
    const port = await freePort()
    const env = {
      devMode: true,
      port,
      hostname: 'localhost',
      dataDirectory: dir,
      blobstoreDiskLocation: join(dir, 'blobs'),
      didPlcUrl: plc.url,
      serviceHandleDomains: ['.test'],
      jwtSecret: randomBytes(16).toString('hex'),
      adminPassword: randomBytes(16).toString('hex'),
      plcRotationKeyK256PrivateKeyHex: Buffer.from(
        Keypair.generate('secp256k1').exportSecretKey(),
      ).toString('hex'),
      recoveryDidKey: Keypair.generate('secp256k1').did(),
      inviteRequired: false,
      disableSsrfProtection: true,
      bskyAppViewUrl: 'https://appview.invalid',
      bskyAppViewDid: 'did:example:invalid',
      modServiceUrl: 'https://mod.invalid',
      modServiceDid: 'did:example:invalid',
    }
    const pds = await PDS.create(envToCfg(env), envToSecrets(env))
    await pds.start()
    t.teardown(async () => {
      await pds.destroy()
      rmSync(dir, { recursive: true, force: true })
    })
    return new TestPds(`http://localhost:${port}`, pds)
  }

  async createAccount(name: string): Promise<PdsAccount> {
    const handle = `${name}${randomBytes(3).toString('hex')}.test`
    const password = randomBytes(12).toString('hex')
    const res = await request(`${this.url}/xrpc/com.atproto.server.createAccount`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: `${handle}@example.com`, handle, password }),
    })
    const body = (await res.body.json()) as { did: string }
    if (res.statusCode !== 200) throw new Error(`createAccount: ${JSON.stringify(body)}`)
    return { did: body.did, handle, password }
  }

  /**
   * What a browser does between the authorize URL and the callback: opens the page, signs in,
   * consents. Returns the callback URL the authorization server redirects to.
   */
  async signIn(authorizeUrl: string, account: PdsAccount): Promise<URL> {
    const jar = new Map<string, string>()
    const keep = (headers: Record<string, string | string[] | undefined>) => {
      for (const c of [headers['set-cookie'] ?? []].flat()) {
        const [pair] = c.split(';')
        const at = pair!.indexOf('=')
        jar.set(pair!.slice(0, at), pair!.slice(at + 1))
      }
    }
    const cookie = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ')
    const navigate = { 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' }
    const page = await request(authorizeUrl, {
      headers: { ...navigate, 'sec-fetch-site': 'cross-site', accept: 'text/html' },
    })
    keep(page.headers)
    await page.body.dump()
    if (page.statusCode !== 200) throw new Error(`authorize page: ${page.statusCode}`)
    const csrf = [...jar].find(([k]) => k.includes('csrf'))?.[1] ?? ''
    const api = async (path: string, body: object) => {
      const res = await request(`${this.url}/@atproto/oauth-provider/~api/${path}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'sec-fetch-mode': 'same-origin',
          'sec-fetch-site': 'same-origin',
          'sec-fetch-dest': 'empty',
          origin: this.url,
          referer: authorizeUrl,
          'x-csrf-token': csrf,
          cookie: cookie(),
        },
        body: JSON.stringify(body),
      })
      keep(res.headers)
      const json = (await res.body.json()) as Record<string, unknown>
      if (res.statusCode !== 200) throw new Error(`${path}: ${JSON.stringify(json)}`)
      return json
    }
    const { handle: username, password } = account
    await api('sign-in', { locale: 'en', username, password, remember: true })
    const { url } = (await api('consent', { sub: account.did })) as { url: string }
    const back = await request(url, {
      headers: {
        ...{ ...navigate, 'sec-fetch-site': 'same-origin' },
        ...{ referer: authorizeUrl, cookie: cookie() },
      },
    })
    const text = await back.body.text()
    const location = back.headers.location
    if (back.statusCode !== 303 || typeof location !== 'string')
      throw new Error(
        `authorization redirect: ${back.statusCode} ${url} ${(text.match(/error_description[^,]*/) ?? [''])[0]}`,
      )
    return new URL(location)
  }
}

/**
 * https://gatehouse.internal:<port> in front of a Gatehouse at `target` (127.0.0.1:port), with a
 * throwaway certificate this process trusts for that name. Returns the public origin.
 */
export async function tlsFront(t: TestLike, targetPort: number): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-tls-'))
  execFileSync(
    'openssl',
    [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
      ...['-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1'],
      ...['-subj', `/CN=${GATEHOUSE_HOST}`, '-addext', `subjectAltName=DNS:${GATEHOUSE_HOST}`],
    ],
    { stdio: 'ignore' },
  )
  const cert = readFileSync(join(dir, 'cert.pem'))
  const key = readFileSync(join(dir, 'key.pem'))
  rmSync(dir, { recursive: true, force: true })
  const server = createServer({ cert, key }, (socket) => {
    const upstream = connect(targetPort, '127.0.0.1')
    socket.pipe(upstream).pipe(socket)
    socket.on('error', () => upstream.destroy())
    upstream.on('error', () => socket.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const previous = getGlobalDispatcher()
  const lookup = (
    hostname: string,
    opts: { all?: boolean },
    cb: (err: Error | null, address: string | LookupAddress[], family?: number) => void,
  ) => {
    if (hostname !== GATEHOUSE_HOST) return dnsLookup(hostname, opts, cb as never)
    if (opts.all) return cb(null, [{ address: '127.0.0.1', family: 4 }])
    return cb(null, '127.0.0.1', 4)
  }
  setGlobalDispatcher(new Agent({ connect: { lookup: lookup as never, ca: cert } }))
  t.teardown(async () => {
    setGlobalDispatcher(previous)
    await new Promise((resolve) => server.close(resolve))
  })
  return `https://${GATEHOUSE_HOST}:${(server.address() as AddressInfo).port}`
}

/**
 * A login test's world: the PLC directory, a PDS, a Gatehouse behind the TLS front (so the PDS
 * accepts it as a client), and an active authority (a did:plc) on it.
 */
export async function loginWorld(t: TestLike) {
  const plc = await PlcDirectory.start(t)
  const pds = await TestPds.start(t, plc)
  const port = await freePort()
  const publicUrl = await tlsFront(t, port)
  const a = await TestArbiter.create(t, {
    port,
    env: { GATEHOUSE_PUBLIC_URL: publicUrl, GATEHOUSE_PLC_URL: plc.url },
  })
  const authorityDid = (await plc.createAccount()).did
  await registerAuthority(a.ctx, authorityDid, { atproto: Keypair.generate('secp256k1') })
  return { plc, pds, publicUrl, a, authorityDid }
}

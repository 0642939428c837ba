// The dashboard as plain HTTP sees it: the shell at / and at every client route, the two hashed
// assets, their caching, the exact Content-Security-Policy on every dashboard answer (the join
// pages included), 404 for any other asset name, and nothing in any of it that points at another
// origin. The browser flows are in flows.test.ts.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { OPERATOR } from '../../src/audit/audit-log.js'
import { DASHBOARD_CSP, WEB_DIR } from '../../src/rest/dashboard.js'
import { PACKAGE_ROOT } from '../../src/paths.js'
import { getHostedSpace } from '../../src/spaces/hosted.js'
import { spaceWorld } from '../_helpers/spaces.js'

const w = await spaceWorld(t)
const { a } = w
const manifest = JSON.parse(readFileSync(join(WEB_DIR, 'manifest.json'), 'utf8')) as {
  js: string
  css: string
}

const EXACT_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
  "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

/** Every http(s) URL in a text, but the SVG namespace (a name, never fetched). */
const foreignUrls = (text: string) =>
  (text.match(/https?:\/\/[^\s"'`)<>]*/g) ?? []).filter((u) => u !== 'http://www.w3.org/2000/svg')

function dashboardHeaders(t: Test, res: Response, what: string) {
  t.equal(res.headers.get('content-security-policy'), EXACT_CSP, `${what}: the exact CSP`)
  t.equal(res.headers.get('x-content-type-options'), 'nosniff', `${what}: nosniff`)
}

t.test('the build names its two files by their content', async (t) => {
  t.match(manifest, { js: /^app\.[A-Z0-9]{8}\.js$/, css: /^app\.[A-Z0-9]{8}\.css$/ })
  t.same(readdirSync(WEB_DIR).sort(), [manifest.css, manifest.js, 'manifest.json'].sort())
  t.equal(DASHBOARD_CSP, EXACT_CSP)
  // The same sources build to the same names: the names come from the content, not the time.
  const again = mkdtempSync(join(tmpdir(), 'gatehouse-web-'))
  t.teardown(() => rmSync(again, { recursive: true, force: true }))
  execFileSync(process.execPath, [join(PACKAGE_ROOT, 'scripts', 'build-web.mjs'), again])
  t.same(JSON.parse(readFileSync(join(again, 'manifest.json'), 'utf8')), manifest)
})

t.test('the shell answers / and every client route, never cached', async (t) => {
  const space = w.space.slice('at://'.length).split('/')
  const deep = [
    '/',
    `/a/${encodeURIComponent(w.authority.did)}`,
    `/a/${encodeURIComponent(w.authority.did)}/audit?action=member.add`,
    `/a/${encodeURIComponent(space[0]!)}/s/${space[2]}/${space[3]}/members`,
  ]
  for (const path of deep) {
    const res = await a.fetch(path)
    t.equal(res.status, 200, path)
    t.match(res.headers.get('content-type'), /^text\/html/)
    t.equal(res.headers.get('cache-control'), 'no-cache', `${path}: revalidated every time`)
    t.equal(res.headers.get('referrer-policy'), 'same-origin')
    dashboardHeaders(t, res, path)
    const html = await res.text()
    t.match(html, `<script type="module" src="/assets/${manifest.js}"></script>`)
    t.match(html, `<link rel="stylesheet" href="/assets/${manifest.css}">`)
    t.notMatch(html, /style=|<script>/, 'no inline style or script')
    t.same(foreignUrls(html), [], `${path}: nothing from another origin`)
  }
})

t.test('the assets are immutable, typed, and nothing else is served', async (t) => {
  for (const [name, type] of [
    [manifest.js, /^text\/javascript/],
    [manifest.css, /^text\/css/],
  ] as const) {
    const res = await a.fetch(`/assets/${name}`)
    t.equal(res.status, 200)
    t.match(res.headers.get('content-type'), type)
    t.equal(res.headers.get('cache-control'), 'public, max-age=31536000, immutable')
    dashboardHeaders(t, res, name)
    const body = await res.text()
    t.equal(body, readFileSync(join(WEB_DIR, name), 'utf8'), 'the built file itself')
    t.same(foreignUrls(body), [], `${name}: no other origin`)
  }
  const stale = manifest.js.replace(/\.[A-Z0-9]{8}\./, '.AAAAAAAA.')
  for (const path of [`/assets/${stale}`, '/assets/manifest.json', '/assets/..%2Fbin.js']) {
    const res = await a.fetch(path)
    t.equal(res.status, 404, path)
    t.match(await res.json(), { error: 'NotFound' })
    dashboardHeaders(t, res, path)
  }
})

t.test(
  'the join page wears the dashboard’s stylesheet and CSP, and says what joining grants',
  async (t) => {
    const config = await getHostedSpace(a.ctx, w.space)
    const { code } = await a.ctx.admission.createInvite(
      config,
      { write: true, maxUses: 1 },
      OPERATOR,
    )
    const res = await a.fetch(`/join/${code}`)
    t.equal(res.status, 200)
    dashboardHeaders(t, res, '/join/{code}')
    t.equal(res.headers.get('cache-control'), 'no-store')
    t.equal(res.headers.get('referrer-policy'), 'no-referrer', 'the code never leaves in a Referer')
    const html = await res.text()
    t.match(html, `<link rel="stylesheet" href="/assets/${manifest.css}">`)
    t.match(html, w.space, 'the space')
    t.match(html, /read and write/, 'what it grants')
    t.match(html, `action="/join/${code}/login"`)
    t.match(html, /<label for="handle">/, 'a labelled handle field')
    t.same(foreignUrls(html), [])

    await a.ctx.admission.revokeInvite(
      w.space,
      (await a.ctx.admission.listInvites(w.space, 1))[0]!.id,
      OPERATOR,
    )
    const revoked = await a.fetch(`/join/${code}`)
    t.equal(revoked.status, 200)
    t.match(await revoked.text(), /was revoked/)
    t.notMatch(await (await a.fetch(`/join/${code}`)).text(), /<form/, 'no form to accept it')

    const unknown = await a.fetch('/join/abcdefghijklmnopqrstuvwxyz234567')
    t.equal(unknown.status, 404)
    dashboardHeaders(t, unknown, 'unknown invite')
    t.match(await unknown.text(), /names no invite/)

    const ask = await a.fetch(`/request-join?space=${encodeURIComponent(w.space)}`)
    dashboardHeaders(t, ask, '/request-join')
  },
)

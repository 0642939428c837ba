import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import { GATEHOUSE_HOST, type PdsAccount } from './oauth.js'
import type { TestLike } from './arbiter.js'

/**
 * Browser tests drive Debian's Chromium (never a downloaded build) with playwright-core, against a
 * real Gatehouse behind the TLS front of oauth.ts and a real authorization server (@atproto/pds) on
 * loopback. See docs/testing.md.
 */

export const CHROMIUM = '/usr/bin/chromium'
const INSTALL = 'apt-get install -y chromium'

/**
 * What Chromium needs here: root (no sandbox), no GPU, and nothing of its own talking to the
 * network. The one name it resolves besides loopback is the TLS front's; any other fails, so a page
 * that reaches for another origin shows up as a failed load rather than a wait on the internet.
 */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  `--host-resolver-rules=MAP ${GATEHOUSE_HOST} 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE localhost`,
]

export const DESKTOP = { width: 1280, height: 800 }
export const PHONE = { width: 390, height: 844 }

export const SCREENSHOTS = fileURLToPath(new URL('../../artifacts/screenshots/', import.meta.url))

/** The part of a tap test the helpers below use. */
export interface Assert extends TestLike {
  ok(value: unknown, message: string, extra: Record<string, unknown>): unknown
  pass(message: string, extra: Record<string, unknown>): unknown
}

/**
 * One Chromium for a test file, closed at its teardown. Launch it after building the test's world:
 * tap runs teardowns last-registered first, and the servers would otherwise wait on the browser's
 * open connections before it is closed. Without Chromium the test is skipped (with the command
 * that installs it); in CI (`CI` set) that is a failure instead.
 */
export async function launchChromium(t: Assert): Promise<Browser | undefined> {
  if (!existsSync(CHROMIUM)) {
    const why = `no Chromium at ${CHROMIUM}: ${INSTALL}`
    if (process.env.CI) throw new Error(why)
    t.pass(why, { skip: why })
    return undefined
  }
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS })
  t.teardown(() => browser.close())
  return browser
}

/**
 * A fresh browser profile for one user: its own cookies. The TLS front's throwaway certificate is
 * accepted here, in tests only.
 */
export function newUser(browser: Browser): Promise<BrowserContext> {
  return browser.newContext({ ignoreHTTPSErrors: true, viewport: DESKTOP })
}

/**
 * The authorization server's part of a login, in its own pages, from wherever Gatehouse sent the
 * browser to it (`/login`, or a join page's form): sign in with the account's password (the
 * identifier is typed unless the login hint filled it) and consent. Resolves once the browser is
 * back on Gatehouse and the page there has loaded: a join login's answer is the callback's own
 * page, a manager's login is redirected on from it.
 */
export async function finishLogin(page: Page, account: PdsAccount): Promise<void> {
  await page.waitForURL((url) => url.hostname !== GATEHOUSE_HOST)
  const identifier = page.getByRole('textbox', { name: 'Identifier', exact: true })
  await identifier.waitFor()
  if (await identifier.isEditable()) await identifier.fill(account.handle)
  await page.getByRole('textbox', { name: 'Password', exact: true }).fill(account.password)
  await page.getByRole('button', { name: 'Sign in', exact: true }).click()
  await page.getByRole('button', { name: 'Authorize', exact: true }).click()
  await page.waitForURL((url) => url.hostname === GATEHOUSE_HOST)
}

/**
 * A manager's login in the browser: Gatehouse's `/login`, the authorization server, and back with
 * the session cookie. Returns the page, on wherever the login landed.
 */
export async function loginAs(
  context: BrowserContext,
  publicUrl: string,
  account: PdsAccount,
): Promise<Page> {
  const page = await context.newPage()
  await page.goto(`${publicUrl}/login?handle=${encodeURIComponent(account.did)}`)
  await finishLogin(page, account)
  const cookies = await context.cookies(publicUrl)
  const landed = new URL(page.url())
  if (landed.pathname === '/oauth/callback' || !cookies.some((c) => c.name === 'gatehouse_session'))
    throw new Error(
      `no session after login, on ${landed.pathname}: ${await page.innerText('body')}`,
    )
  return page
}

/** `artifacts/screenshots/{name}-desktop.png` and `{name}-phone.png`, the whole page each. */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true })
  const before = page.viewportSize() ?? DESKTOP
  try {
    for (const [size, viewport] of [
      ['desktop', DESKTOP],
      ['phone', PHONE],
    ] as const) {
      await page.setViewportSize(viewport)
      await page.screenshot({ path: `${SCREENSHOTS}${name}-${size}.png`, fullPage: true })
    }
  } finally {
    await page.setViewportSize(before)
  }
}

const AXE_SOURCE = readFileSync(
  createRequire(import.meta.url).resolve('axe-core/axe.min.js'),
  'utf8',
)

interface AxeViolation {
  id: string
  impact?: string | null
  help: string
  nodes: { target: unknown[] }[]
}

/**
 * axe-core on the page as it is now: injected by evaluation (which the page's CSP does not govern,
 * so the CSP under test stays as served), then run. Fails `t` listing every serious or critical
 * violation, each with its rule, its help and the nodes it found.
 */
export async function checkA11y(t: Assert, page: Page, name: string): Promise<void> {
  await page.evaluate(AXE_SOURCE)
  const violations = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run(): Promise<{ violations: unknown }> } }).axe
    return (await axe.run()).violations as AxeViolation[]
  })
  const serious = violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map(
      (v) =>
        `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`,
    )
  t.ok(serious.length === 0, `${name}: no serious accessibility violation`, { violations: serious })
}

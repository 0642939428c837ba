/**
 * The browser harness itself (test/_helpers/browser.ts), so the dashboard's tests stand on
 * something proven: Debian's Chromium logs a manager in through the real authorization server's
 * own pages and holds a working session; an invitee finishes a join started from Gatehouse's own
 * form; screenshots land in artifacts/; and the accessibility check passes our pages while failing
 * a page with a known violation, so it cannot pass by checking nothing.
 */
import { existsSync, statSync } from 'node:fs'
import t from 'tap'
import { OPERATOR } from '../../src/audit/audit-log.js'
import {
  checkA11y,
  finishLogin,
  launchChromium,
  loginAs,
  newUser,
  screenshot,
  SCREENSHOTS,
  type Assert,
} from '../_helpers/browser.js'
import { loginWorld } from '../_helpers/oauth.js'
import { MEMBERS_ONLY } from '../_helpers/spaces.js'

const { pds, publicUrl, a, authorityDid } = await loginWorld(t)
const browser = await launchChromium(t)
if (browser) {
  const space = await a.ctx.spaces.create({
    authority: authorityDid,
    spaceType: 'com.example.forum',
    skey: 'harness',
    ...MEMBERS_ONLY,
  })

  t.test('a manager logs in through the authorization server’s pages', async (t) => {
    const ada = await pds.createAccount('ada')
    await a.ctx.managers.change(authorityDid, ada.did, 'owner', 'operator')
    const page = await loginAs(await newUser(browser), publicUrl, ada)
    t.equal(new URL(page.url()).origin, publicUrl, 'back on Gatehouse')
    // The browser itself sends the cookie (a fetch from the landing page would meet its CSP).
    const me = (await page.goto(`${publicUrl}/api/v1/me`))!
    t.equal(me.status(), 200)
    t.match(await me.json(), { did: ada.did, via: 'session', authorities: [{ did: authorityDid }] })

    await page.goto(`${publicUrl}/api/v1/docs`)
    await checkA11y(t, page, 'API reference')
    await screenshot(page, 'api-docs')
    for (const size of ['desktop', 'phone'])
      t.ok(statSync(`${SCREENSHOTS}api-docs-${size}.png`).size > 0, `${size} screenshot`)
  })

  t.test('another user’s context has no session', async (t) => {
    const page = await (await newUser(browser)).newPage()
    t.equal((await page.goto(`${publicUrl}/api/v1/me`))!.status(), 401)
  })

  t.test('an invitee joins from the invite page’s form', async (t) => {
    const { code } = await a.ctx.admission.createInvite(
      space,
      { write: false, maxUses: 1 },
      OPERATOR,
    )
    const bea = await pds.createAccount('bea')
    const page = await (await newUser(browser)).newPage()
    await page.goto(`${publicUrl}/join/${code}`)
    await checkA11y(t, page, 'join page')
    await screenshot(page, 'join')
    await page.getByLabel('Your handle or DID').fill(bea.did)
    await page.getByRole('button', { name: 'Log in and join' }).click()
    await finishLogin(page, bea)
    await page.getByRole('heading', { name: 'You have joined' }).waitFor()
    t.ok(await a.ctx.spaces.members.isMember(space.uri, bea.did, 'read'), 'a member')
    await checkA11y(t, page, 'joined page')
  })

  t.test('a user asks to join from the request page’s form', async (t) => {
    await a.ctx.admission.setJoinRequestsOpen(space.uri, true, OPERATOR)
    const cid = await pds.createAccount('cid')
    const page = await (await newUser(browser)).newPage()
    await page.goto(`${publicUrl}/request-join?space=${encodeURIComponent(space.uri)}`)
    await checkA11y(t, page, 'request page')
    await screenshot(page, 'request-join')
    await page.getByLabel('Your handle or DID').fill(cid.did)
    await page.getByLabel('A word to the managers').fill('hello from the harness')
    await page.getByRole('button', { name: 'Log in and ask' }).click()
    await finishLogin(page, cid)
    await page.getByRole('heading', { name: 'You have asked to join' }).waitFor()
    const requests = await a.ctx.db.prisma.joinRequest.findMany({ where: { did: cid.did } })
    t.match(requests, [{ space: space.uri, message: 'hello from the harness' }])
  })

  t.test('the accessibility check fails a page with a known violation', async (t) => {
    const page = await (await newUser(browser)).newPage()
    await page.setContent('<!doctype html><html lang="en"><title>x</title><main><input></main>')
    const seen: { ok: unknown; extra?: object }[] = []
    const recorder: Assert = {
      teardown: () => {},
      ok: (ok, _message, extra) => seen.push({ ok, extra }),
      pass: () => seen.push({ ok: true }),
    }
    await checkA11y(recorder, page, 'unlabelled input')
    t.match(seen, [{ ok: false, extra: { violations: [/^label \(critical\): .* at input$/] } }])
  })

  t.test('screenshots go under artifacts/', async (t) => {
    t.ok(existsSync(`${SCREENSHOTS}join-phone.png`))
  })
}

/**
 * The dashboard in Debian's Chromium against a real Gatehouse and a real authorization server
 * (@atproto/pds), on loopback: a manager logs in and creates a space from a preset, adds and
 * removes a member, makes an invite that a second user accepts through /join/{code}, approves a
 * third user's join request, finds all of it in the audit log and verifies the chain there, and
 * imports 10,000 members watching the progress bar reach the end. Every main page is
 * screenshotted at desktop and phone widths and passes the accessibility check.
 */
import { readFileSync } from 'node:fs'
import t from 'tap'
import type { Page } from 'playwright-core'
import {
  checkA11y,
  finishLogin,
  launchChromium,
  loginAs,
  newUser,
  screenshot,
  type Assert,
} from '../_helpers/browser.js'
import { loginWorld } from '../_helpers/oauth.js'

const { pds, publicUrl, a, authorityDid } = await loginWorld(t)
const browser = await launchChromium(t)

/** A <progress> element, as far as this test reads it. */
interface Bar {
  value: number
  max: number
}

/** A main page: looked at (screenshots) and checked (axe). */
async function page(t: Assert, p: Page, name: string) {
  await checkA11y(t, p, name)
  await screenshot(p, name)
}

/** The page's live region said `text` (the page's own statement of what happened). */
/** A tab of the space's page. */
const tab = (p: Page, name: string) =>
  p.getByRole('navigation', { name: 'Space' }).getByRole('link', { name }).click()

const said = (p: Page, text: string | RegExp) =>
  p.getByRole('status').filter({ hasText: text }).waitFor()

if (browser) {
  t.test('a manager runs a space from the dashboard', async (t) => {
    const mara = await pds.createAccount('mara')
    await a.ctx.managers.change(authorityDid, mara.did, 'owner', 'operator')

    const visitor = await (await newUser(browser)).newPage()
    await visitor.goto(publicUrl)
    await visitor.getByRole('heading', { name: 'Log in to Gatehouse' }).waitFor()
    await page(t, visitor, 'login')

    const p = await loginAs(await newUser(browser), publicUrl, mara)
    p.on('dialog', (d) => void d.accept())
    // From here on the page is the dashboard's: nothing from elsewhere, nothing the CSP refuses.
    const foreign: string[] = []
    const refused: string[] = []
    p.on('request', (r) => {
      if (!/^(data|blob):/.test(r.url()) && new URL(r.url()).origin !== publicUrl)
        foreign.push(r.url())
    })
    p.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) refused.push(m.text())
    })
    t.equal(new URL(p.url()).pathname, '/', 'the login lands on the dashboard')
    await p.getByRole('heading', { name: 'Your authorities' }).waitFor()
    t.equal(
      await p.evaluate('document.activeElement?.tagName'),
      'H1',
      'focus is on the page heading',
    )
    await page(t, p, 'authorities')

    // A space from a preset.
    await p.getByRole('link', { name: authorityDid }).click()
    await p.getByRole('heading', { name: 'Create a space' }).waitFor()
    t.match(
      await p.locator('pre.document').textContent(),
      new RegExp(`"id": "${authorityDid}"`),
      'the DID document as the PLC directory publishes it',
    )
    await page(t, p, 'authority')
    await p.getByLabel('Space type (an NSID)').fill('com.example.forum')
    await p.getByLabel('Record key').fill('garden')
    await p
      .getByRole('radio', { name: /^members-only/ })
      .first()
      .check()
    await p.getByRole('button', { name: 'Create space' }).click()
    await p.getByRole('heading', { name: 'Space garden' }).waitFor()
    const space = `at://${authorityDid}/space/com.example.forum/garden`
    t.match(await a.ctx.spaces.lookup(space), { state: 'active' })
    t.match(new URL(p.url()).pathname, /\/s\/com\.example\.forum\/garden$/, 'a deep link')
    await p.reload()
    await p.getByRole('heading', { name: 'Space garden' }).waitFor()
    await p.getByLabel('Who may read the member list').selectOption('members')
    await p.getByRole('button', { name: 'Save visibility' }).click()
    // The page reloads with the new value once it is saved.
    await p.locator('dt:text-is("Roster visible to") + dd', { hasText: /^members$/ }).waitFor()
    t.match(await a.ctx.spaces.lookup(space), { config: { rosterVisibility: 'members' } })

    // Add a member, then remove it.
    const somebody = 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa'
    await tab(p, 'Members')
    await p.getByLabel('DID', { exact: true }).fill(somebody)
    await p.getByRole('button', { name: 'Add member' }).click()
    await p.getByRole('button', { name: `Remove ${somebody}` }).waitFor()
    t.ok(await a.ctx.spaces.members.isMember(space, somebody, 'write'), 'added, with write')
    await p.getByRole('button', { name: `Remove ${somebody}` }).click()
    await said(p, `${somebody} removed.`)
    t.notOk(await a.ctx.spaces.members.isMember(space, somebody, 'read'), 'removed')

    // An invite, accepted by a second user in their own browser.
    await tab(p, 'Invites')
    await p.getByRole('button', { name: 'Create invite' }).click()
    const dialog = p.getByRole('dialog', { name: 'Your invite link' })
    const link = await dialog.getByRole('textbox').inputValue()
    t.match(link, new RegExp(`^${publicUrl}/join/[a-z2-7]+$`), 'the link, shown once')
    await dialog.getByRole('button', { name: 'Close' }).click()
    await p.getByRole('cell', { name: '0 of 1' }).waitFor()
    await page(t, p, 'invites')
    const ivy = await pds.createAccount('ivy')
    const invitee = await (await newUser(browser)).newPage()
    await invitee.goto(link)
    await invitee.getByText('read', { exact: true }).waitFor()
    await invitee.getByLabel('Your handle or DID').fill(ivy.did)
    await invitee.getByRole('button', { name: 'Log in and join' }).click()
    await finishLogin(invitee, ivy)
    await invitee.getByRole('heading', { name: 'You have joined' }).waitFor()
    await p.reload()
    await p.getByRole('cell', { name: '1 of 1' }).waitFor()
    t.ok(await p.getByText(ivy.did).isVisible(), 'the invite shows who used it')

    // Join requests on; a third user asks; the manager approves with write.
    await tab(p, 'Overview')
    await p.getByLabel('Take join requests').check()
    await said(p, 'Join requests are on.')
    const rex = await pds.createAccount('rex')
    const asker = await (await newUser(browser)).newPage()
    await asker.goto(`${publicUrl}/request-join?space=${encodeURIComponent(space)}`)
    await asker.getByLabel('A word to the managers (optional)').fill('hello from rex')
    await asker.getByLabel('Your handle or DID').fill(rex.did)
    await asker.getByRole('button', { name: 'Log in and ask' }).click()
    await finishLogin(asker, rex)
    await asker.getByRole('heading', { name: 'You have asked to join' }).waitFor()
    await tab(p, 'Join requests')
    await p.getByRole('cell', { name: 'hello from rex' }).waitFor()
    await page(t, p, 'join-requests')
    await p.getByRole('button', { name: `Approve ${rex.did}` }).click()
    const approve = p.getByRole('dialog', { name: `Approve ${rex.did}` })
    t.equal(
      await p.evaluate("document.activeElement?.closest('dialog') !== null"),
      true,
      'focus moves into the dialog',
    )
    await approve.getByLabel('Grant write as well as read').check()
    await approve.getByRole('button', { name: 'Approve' }).click()
    await p.getByText('No one is waiting.').waitFor()
    t.ok(await a.ctx.spaces.members.isMember(space, rex.did, 'write'), 'approved with write')

    // Credentials and notifications: their pages, empty.
    await tab(p, 'Credentials')
    await p.getByText('No credentials issued.').waitFor()
    // One credential, as the exchange records it (issuing a real one is test/xrpc's business).
    const now = Date.now()
    await a.ctx.db.prisma.issuedCredential.create({
      data: {
        space,
        jti: 'jti-of-rex',
        userDid: rex.did,
        clientId: 'https://app.example/client-metadata.json',
        issuedAt: new Date(now),
        expiresAt: new Date(now + 3_600_000),
      },
    })
    await p.reload()
    await p.getByRole('cell', { name: rex.did, exact: true }).waitFor()
    await page(t, p, 'credentials')
    await p
      .getByRole('button', { name: `Revoke the credential of ${rex.did}`, exact: false })
      .click()
    await p.getByRole('cell', { name: /^revoked/ }).waitFor()
    t.ok(
      (await a.ctx.db.prisma.issuedCredential.findFirst({ where: { jti: 'jti-of-rex' } }))
        ?.revokedAt,
      'revoked from the dashboard',
    )
    await tab(p, 'Notifications')
    await p.getByText('No syncer is registered.').waitFor()
    await page(t, p, 'notifications')

    // All of it in the audit log, and the chain verified there.
    await p.goto(`${publicUrl}/a/${encodeURIComponent(authorityDid)}/audit`)
    await p.getByText(/^Audit entries, newest first/).waitFor()
    for (const action of [
      'space.create',
      'member.put',
      'member.remove',
      'invite.create',
      'invite.accept',
      'join-settings.change',
      'join-request.create',
      'join-request.approve',
    ])
      t.ok(await p.getByRole('cell', { name: action, exact: true }).first().isVisible(), action)
    await p.getByRole('button', { name: 'Verify the chain' }).click()
    await said(p, /^The chain is intact: \d+ entries verified\.$/)
    await page(t, p, 'audit')
    await p.getByLabel('Action').fill('invite.accept')
    await p.getByRole('button', { name: 'Filter' }).click()
    await p.waitForURL(/\?action=invite\.accept$/)
    await p.getByText(/^Audit entries, newest first/).waitFor()
    t.ok(await p.getByRole('cell', { name: 'invite.accept' }).isVisible(), 'the invitee’s entry')
    t.equal(await p.getByRole('cell', { name: 'member.put', exact: true }).count(), 0, 'filtered')

    // 10,000 members from a JSON-lines file, in parts, with a progress bar to the end.
    await p.goto(
      `${publicUrl}/a/${encodeURIComponent(authorityDid)}/s/com.example.forum/garden/members`,
    )
    const lines = Array.from({ length: 10_000 }, (_, i) =>
      JSON.stringify({
        did: `did:plc:${String(i).padStart(24, 'm')}`,
        read: true,
        write: i % 2 === 0,
      }),
    )
    await p.getByLabel('File').setInputFiles({
      name: 'members.jsonl',
      mimeType: 'application/x-ndjson',
      buffer: Buffer.from(`${lines.join('\n')}\n`),
    })
    await p.getByRole('button', { name: 'Import' }).click()
    await said(p, /^Imported \d+ of 10000 lines…$/)
    await said(p, 'Import finished: 10000 lines, 10000 changed.')
    const bar = p.getByRole('progressbar', { name: 'Import progress' })
    t.equal(await bar.getAttribute('aria-valuenow'), null, 'a determinate bar…')
    t.same(
      await bar.evaluate((b) => [(b as unknown as Bar).value, (b as unknown as Bar).max]),
      [10_000, 10_000],
      '…full',
    )
    t.equal((await a.ctx.spaces.lookup(space)).state, 'active')
    await p.reload()
    await p.getByRole('caption').filter({ hasText: '(10002 in all)' }).waitFor()
    await page(t, p, 'members')

    // And out again, as a file.
    const file = p.waitForEvent('download')
    await p.getByRole('button', { name: 'Export members' }).click()
    await said(p, 'Export finished: 10002 members.')
    const saved = await (await file).path()
    t.equal(readFileSync(saved, 'utf8').trim().split('\n').length, 10_002, 'every member exported')

    // The space's charts, with their numbers as a table.
    await tab(p, 'Overview')
    const members = p.getByRole('figure', { name: 'Members over time' })
    await members.getByRole('img', { name: 'Members over time' }).waitFor()
    await p.getByText('No credentials asked for in the last 30 days.').waitFor()
    await page(t, p, 'space')
    await members.getByText('Members over time: the numbers').click()
    await members.getByRole('cell', { name: '10002' }).waitFor()
    await checkA11y(t, p, 'space, a chart’s numbers open')
    t.same(foreign, [], 'no request to another origin')
    t.same(refused, [], 'nothing refused by the CSP')
  })

  t.test('offline, an API token pasted on the login page opens the dashboard', async (t) => {
    const owner = await pds.createAccount('otto')
    await a.ctx.managers.change(authorityDid, owner.did, 'owner', 'operator')
    const { token } = await a.ctx.tokens.create({
      authority: authorityDid,
      createdBy: owner.did,
      creatorRole: 'owner',
      name: 'laptop',
      role: 'moderator',
    })
    const p = await (await newUser(browser)).newPage()
    await p.goto(publicUrl)
    await p.getByLabel('API token').fill(token)
    await p.getByRole('button', { name: 'Use this token' }).click()
    await p.getByRole('link', { name: authorityDid }).waitFor()
    t.ok(await p.getByRole('cell', { name: 'moderator' }).isVisible(), 'with the token’s role')
    t.same(await p.context().cookies(), [], 'no cookie: the token is the credential')
    await p.getByRole('button', { name: 'Log out' }).click()
    await p.getByRole('heading', { name: 'Log in to Gatehouse' }).waitFor()
    await p.reload()
    await p.getByRole('heading', { name: 'Log in to Gatehouse' }).waitFor()
    t.pass('logging out forgets the token')
  })
}

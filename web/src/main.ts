import './app.css'
import { ApiError, apiToken, call, failure, useApiToken, whenLoggedOut } from './api.js'
import { go, h, say, statusRegion } from './dom.js'
import { authoritiesPage, loginPage } from './pages/home.js'
import { authorityPage, auditPage } from './pages/authority.js'
import { spacePage } from './pages/space.js'
import type { Me } from './types.js'

/** What a page is drawn with: where to draw, and the parts of its address. */
export interface View {
  main: HTMLElement
  params: string[]
}

type Page = (view: View) => Promise<void>

const SEG = '([^/]+)'
/** Client routes (the server answers every one with the same shell, so deep links reload). */
const ROUTES: [RegExp, Page][] = [
  [/^\/$/, authoritiesPage],
  [new RegExp(`^/a/${SEG}$`), authorityPage],
  [new RegExp(`^/a/${SEG}/audit$`), auditPage],
  [
    new RegExp(`^/a/${SEG}/s/${SEG}/${SEG}(?:/(members|invites|requests|credentials|notify))?$`),
    spacePage,
  ],
]

let me: Me | undefined

/** Draws the page of the current address; focus goes to its heading. */
async function render() {
  const main = document.getElementById('main')!
  const status = statusRegion()
  main.replaceChildren(status)
  say(status, 'Loading…')
  try {
    me ??= await call<Me>('GET', '/me')
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return showLogin()
    say(status, failure(err), 'error')
    return
  }
  drawNav()
  const path = location.pathname
  for (const [re, page] of ROUTES) {
    const m = re.exec(path)
    if (!m) continue
    const params = m.slice(1).map((p) => (p === undefined ? '' : decodeURIComponent(p)))
    try {
      await page({ main, params })
      if (status.textContent === 'Loading…') say(status, '')
    } catch (err) {
      say(status, failure(err), 'error')
    }
    return focusHeading()
  }
  main.replaceChildren(
    h('h1', { tabindex: -1 }, 'Not found'),
    h('p', {}, h('a', { href: '/' }, 'Back to your authorities')),
  )
  focusHeading()
}

function focusHeading() {
  const heading = document.querySelector<HTMLElement>('main h1')
  if (!heading) return
  heading.tabIndex = -1
  document.title = `${heading.textContent} · Gatehouse`
  heading.focus()
}

function showLogin() {
  me = undefined
  document.getElementById('nav')!.replaceChildren()
  const main = document.getElementById('main')!
  loginPage(main, (token) => {
    useApiToken(token)
    void render()
  })
  focusHeading()
}

function drawNav() {
  const nav = document.getElementById('nav')!
  const out = h('button', { type: 'button', class: 'link', onclick: logOut }, 'Log out')
  nav.replaceChildren(
    h('span', { class: 'who' }, me!.via === 'token' ? 'API token of ' : '', h('code', {}, me!.did)),
    out,
  )
}

async function logOut() {
  if (apiToken()) useApiToken(undefined)
  else await call('POST', '/logout').catch(() => {})
  showLogin()
}

/**
 * Forms that start a login (`data-navigate`) go there by navigation: they are answered with a
 * redirect to the user's authorization server, which CSP's `form-action 'self'` would block.
 */
document.addEventListener('submit', (e) => {
  const form = e.target as HTMLFormElement
  if (!form.hasAttribute('data-navigate') || e.defaultPrevented) return
  e.preventDefault()
  const query = new URLSearchParams(new FormData(form) as unknown as Record<string, string>)
  location.assign(`${form.getAttribute('action')}?${query}`)
})

if (document.body.dataset.app === 'dashboard') start()

function start() {
  document.addEventListener('click', (e) => {
    const a = (e.target as Element).closest?.('a')
    if (!a || a.target || a.hasAttribute('download') || e.ctrlKey || e.metaKey || e.shiftKey) return
    const url = new URL(a.href, location.href)
    if (url.origin !== location.origin || !(url.pathname === '/' || url.pathname.startsWith('/a/')))
      return
    e.preventDefault()
    go(url.pathname + url.search)
  })
  window.addEventListener('popstate', () => void render())
  whenLoggedOut(() => {
    if (me) showLogin()
  })
  void render()
}

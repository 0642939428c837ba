import { all } from '../api.js'
import { field, h, table } from '../dom.js'
import type { View } from '../main.js'
import type { AuthorityRow } from '../types.js'

/** `/a/{authority}` and the paths under it. */
export const authorityHref = (did: string, ...rest: string[]) =>
  ['/a', encodeURIComponent(did), ...rest].join('/')

/**
 * Logging in: a handle goes to `/login?handle=…` (the atproto OAuth flow, back to `/`); offline,
 * an API token pasted here is sent as `Authorization: Bearer` by this tab until it logs out.
 */
export function loginPage(main: HTMLElement, useToken: (token: string) => void) {
  const handle = h('input', {
    name: 'handle',
    required: true,
    autocomplete: 'username',
    placeholder: 'alice.example.com',
  })
  const token = h('input', {
    name: 'token',
    type: 'password',
    required: true,
    autocomplete: 'off',
    placeholder: 'gh_…',
  })
  main.replaceChildren(
    h('h1', {}, 'Log in to Gatehouse'),
    h(
      'p',
      {},
      'Manage your communities’ spaces: members, invites, join requests, credentials and the audit log.',
    ),
    h(
      'form',
      { method: 'get', action: '/login', class: 'card', 'data-navigate': true },
      h('h2', {}, 'With your atproto account'),
      field(
        'Your handle or DID',
        handle,
        'Your own server asks you to sign in and brings you back here.',
      ),
      h('button', {}, 'Log in'),
    ),
    h(
      'form',
      {
        class: 'card',
        onsubmit: (e: Event) => {
          e.preventDefault()
          useToken(token.value.trim())
        },
      },
      h('h2', {}, 'With an API token'),
      field(
        'API token',
        token,
        'For offline use: made with the gatehouse token create command or by another manager. Kept in this tab only.',
      ),
      h('button', { class: 'secondary' }, 'Use this token'),
    ),
  )
}

/** The authorities I manage. */
export async function authoritiesPage({ main }: View) {
  main.append(h('h1', {}, 'Your authorities'))
  const rows = await all<AuthorityRow>('/authorities', 'authorities')
  main.append(
    table(
      'Authorities you manage, with your role',
      ['Authority', 'Handle', 'Status', 'Your role'],
      rows,
      (a) => [h('a', { href: authorityHref(a.did) }, a.did), a.handle ?? '—', a.status, a.role],
      'You manage no authority on this host.',
    ),
  )
}

import { call, failure, path } from '../api.js'
import {
  act,
  check,
  code,
  field,
  go,
  h,
  onSubmit,
  say,
  section,
  statusRegion,
  uid,
} from '../dom.js'
import type { View } from '../main.js'
import type { Space } from '../types.js'
import { chartsSection } from './charts.js'
import { authorityHref } from './home.js'
import { membersTab } from './members.js'
import { invitesTab, requestsTab } from './admission.js'
import { credentialsTab, notifyTab } from './operations.js'

/** A space's parts, from its URI `at://{authority}/space/{type}/{skey}`. */
export function spaceParts(uri: string) {
  const [authority = '', , type = '', skey = ''] = uri.slice('at://'.length).split('/')
  return { authority, type, skey }
}

/** `/a/{authority}/s/{type}/{skey}[/{tab}]`. */
export function spaceHref(uri: string, tab?: string) {
  const { authority, type, skey } = spaceParts(uri)
  return authorityHref(
    authority,
    's',
    encodeURIComponent(type),
    encodeURIComponent(skey),
    ...(tab ? [tab] : []),
  )
}

const TABS: [string, string][] = [
  ['', 'Overview'],
  ['members', 'Members'],
  ['invites', 'Invites'],
  ['requests', 'Join requests'],
  ['credentials', 'Credentials'],
  ['notify', 'Notifications'],
]

/** What a space tab draws with. */
export interface SpaceView extends View {
  space: Space
  api: string
}

/** A space, one tab of it at a time. */
export async function spacePage(view: View) {
  const [authority = '', type = '', skey = '', tab = ''] = view.params
  const uri = `at://${authority}/space/${type}/${skey}`
  const api = `/authorities/${path(authority)}/spaces/${path(type)}/${path(skey)}`
  const space = await call<Space>('GET', api)
  const label = TABS.find(([t]) => t === tab)![1]
  view.main.append(
    h(
      'p',
      { class: 'crumbs' },
      h('a', { href: authorityHref(authority) }, '← Authority'),
      ' ',
      code(uri),
    ),
    h('h1', {}, tab ? `${label}: ${skey}` : `Space ${skey}`),
    h(
      'nav',
      { class: 'tabs', 'aria-label': 'Space' },
      h(
        'ul',
        {},
        TABS.map(([t, name]) =>
          h(
            'li',
            {},
            h(
              'a',
              { href: spaceHref(uri, t || undefined), 'aria-current': t === tab ? 'page' : null },
              name,
            ),
          ),
        ),
      ),
    ),
  )
  const sv: SpaceView = { ...view, space, api }
  const draw = {
    '': overview,
    members: membersTab,
    invites: invitesTab,
    requests: requestsTab,
    credentials: credentialsTab,
    notify: notifyTab,
  }[tab]
  await draw!(sv)
}

const POLICY_NAMES: Record<string, string> = {
  'com.atproto.simplespace.defs#memberListPolicy': 'members (by their flags)',
  'com.atproto.simplespace.defs#publicPolicy': 'anyone',
  'com.atproto.simplespace.defs#managingAppPolicy': 'the managing app decides',
  'com.atproto.simplespace.defs#open': 'any app',
  'com.atproto.simplespace.defs#allowList': 'listed apps only',
}
const policyName = (p: { $type: string }) => POLICY_NAMES[p.$type] ?? p.$type

/**
 * Choosing a preset (and its parameters): for creating a space (`initial` chosen) or changing its
 * policy (nothing chosen until the manager chooses).
 */
export function presetPicker(initial?: string) {
  const name = uid('preset')
  const managingApp = h('input', {
    name: 'managingApp',
    placeholder: 'did:web:app.example#managing_app',
  })
  const clients = h('textarea', {
    name: 'clients',
    rows: 2,
    placeholder: 'one client id (its client-metadata.json address) a line',
  })
  const params = {
    managingApp: field('Managing app (service DID#id)', managingApp),
    clients: field('Allowed apps (client ids, one a line)', clients),
  }
  const radios = PRESETS.map((p) => {
    const input = h('input', {
      type: 'radio',
      name,
      value: p.name,
      id: uid(),
      required: true,
      checked: p.name === initial,
    })
    return h(
      'div',
      { class: 'check' },
      input,
      h('label', { for: input.id }, h('strong', {}, p.name), ' — ', p.description),
    )
  })
  const fieldset = h(
    'fieldset',
    {},
    h('legend', {}, 'Policy preset'),
    radios,
    params.managingApp,
    params.clients,
  )
  const chosen = () =>
    PRESETS.find(
      (p) =>
        p.name ===
        (fieldset.querySelector<HTMLInputElement>('input[type=radio]:checked')?.value ?? ''),
    )
  const sync = () => {
    const wants = chosen()?.parameters ?? []
    params.managingApp.hidden = !wants.includes('managingApp')
    params.clients.hidden = !wants.includes('clients')
  }
  fieldset.addEventListener('change', sync)
  sync()
  return {
    el: fieldset,
    value: () => {
      const p = chosen()
      if (!p) return {}
      const list = clients.value
        .split('\n')
        .map((s) => s.trim())
        .filter(Boolean)
      return {
        preset: p.name,
        ...(p.parameters.includes('managingApp') ? { managingApp: managingApp.value.trim() } : {}),
        ...(p.parameters.includes('clients') ? { clients: list } : {}),
      }
    },
  }
}

async function overview(sv: SpaceView) {
  const { main, space, api } = sv
  const { authority } = spaceParts(space.uri)
  const open = await call<{ open: boolean }>('GET', `${api}/join-settings`)
  main.append(
    section(
      'Policy',
      h(
        'dl',
        { class: 'facts' },
        h('dt', {}, 'Who may read'),
        h('dd', {}, policyName(space.readPolicy)),
        h('dt', {}, 'Who may write'),
        h('dd', {}, policyName(space.writePolicy)),
        h('dt', {}, 'Which apps'),
        h(
          'dd',
          {},
          policyName(space.appAccess),
          space.appAccess.clients
            ? h(
                'ul',
                {},
                space.appAccess.clients.map((c) => h('li', {}, code(c))),
              )
            : null,
        ),
        h('dt', {}, 'Roster visible to'),
        h('dd', {}, space.rosterVisibility),
        h('dt', {}, 'Members'),
        h('dd', {}, h('a', { href: spaceHref(space.uri, 'members') }, String(space.members))),
        h('dt', {}, 'Credential lifetime'),
        h(
          'dd',
          {},
          `${space.credentialTtlSec} s (${space.dpopCredentialTtlSec} s when DPoP-bound)`,
        ),
        h('dt', {}, 'Created'),
        h('dd', {}, new Date(space.createdAt).toLocaleString()),
      ),
      changePolicy(api),
      changeRoster(api, space.rosterVisibility),
    ),
  )
  main.append(joinSettings(api, space.uri, open.open))
  main.append(await chartsSection(api))
  main.append(deleteSpace(api, space.uri, authority))
}

function changePolicy(api: string) {
  const picker = presetPicker()
  const st = statusRegion()
  const form = h(
    'form',
    { class: 'card' },
    h('h3', {}, 'Apply a preset'),
    picker.el,
    h('button', {}, 'Apply preset'),
    st,
  )
  onSubmit(form, st, async () => {
    say(st, 'Saving…')
    await call('PATCH', api, picker.value())
    go(location.pathname)
  })
  return form
}

const ROSTER = {
  owner: 'managers and the managing app only',
  members: 'members too (credential holders)',
  count: 'the member count only, to anyone',
  public: 'anyone',
} as const

function changeRoster(api: string, current: string) {
  const st = statusRegion()
  const select = h(
    'select',
    { name: 'rosterVisibility' },
    Object.entries(ROSTER).map(([value, what]) =>
      h('option', { value, selected: value === current }, `${value}: ${what}`),
    ),
  )
  const form = h(
    'form',
    { class: 'card' },
    h('h3', {}, 'Roster visibility'),
    field('Who may read the member list', select),
    h('button', {}, 'Save visibility'),
    st,
  )
  onSubmit(form, st, async () => {
    say(st, 'Saving…')
    await call('PUT', `${api}/roster-visibility`, { rosterVisibility: select.value })
    go(location.pathname)
  })
  return form
}

function joinSettings(api: string, uri: string, open: boolean) {
  const st = statusRegion()
  const box = check('Take join requests', 'open', open)
  const input = box.querySelector('input')!
  input.addEventListener('change', async () => {
    say(st, 'Saving…')
    try {
      await call('PUT', `${api}/join-settings`, { open: input.checked })
      say(st, input.checked ? 'Join requests are on.' : 'Join requests are off.', 'ok')
    } catch (err) {
      input.checked = !input.checked
      say(st, failure(err), 'error')
    }
  })
  const page = `/request-join?space=${encodeURIComponent(uri)}`
  return section(
    'Joining',
    box,
    h(
      'p',
      {},
      'When on, people ask to join at ',
      h('a', { href: page }, 'the join page'),
      ' and their requests wait in ',
      h('a', { href: spaceHref(uri, 'requests') }, 'Join requests'),
      '. Invites work either way.',
    ),
    st,
  )
}

function deleteSpace(api: string, uri: string, authority: string) {
  const st = statusRegion()
  return section(
    'Delete',
    h(
      'p',
      {},
      'Deleting removes every member, revokes every credential and tells the syncers. It cannot be undone.',
    ),
    h(
      'button',
      {
        type: 'button',
        class: 'danger',
        onclick: act(
          st,
          async () => {
            await call('DELETE', api)
            go(authorityHref(authority))
          },
          `Delete ${uri}? This cannot be undone.`,
        ),
      },
      'Delete this space',
    ),
    st,
  )
}

import { all, call, path } from '../api.js'
import {
  act,
  check,
  code,
  field,
  go,
  h,
  onSubmit,
  openDialog,
  rowButton,
  section,
  statusRegion,
  table,
  when,
} from '../dom.js'
import type { Invite, JoinRequest } from '../types.js'
import { showSecret } from './authority.js'
import type { SpaceView } from './space.js'

const inviteState = (i: Invite) =>
  i.revokedAt
    ? 'revoked'
    : new Date(i.expiresAt).getTime() <= Date.now()
      ? 'expired'
      : i.maxUses !== null && i.uses >= i.maxUses
        ? 'used up'
        : 'open'

/** Invites: create (the link shown once), copy, revoke, and who used them. */
export async function invitesTab({ main, api }: SpaceView) {
  const invites = await all<Invite>(`${api}/invites?limit=100`, 'invites', 500)
  const st = statusRegion()
  main.append(
    section(
      'Invites',
      st,
      table(
        'Invites, newest first (their links are shown once, when made)',
        ['Created', 'Grants', 'Uses', 'Expires', 'State', 'Used by', ''],
        invites,
        (i) => [
          when(i.createdAt),
          i.write ? 'read, write' : 'read',
          `${i.uses} of ${i.maxUses ?? '∞'}`,
          when(i.expiresAt),
          h('span', { class: `badge ${inviteState(i).replace(' ', '-')}` }, inviteState(i)),
          i.usedBy.length
            ? h(
                'ul',
                { class: 'plain' },
                i.usedBy.map((u) => h('li', {}, code(u.did))),
              )
            : '—',
          inviteState(i) === 'open'
            ? rowButton(
                'Revoke',
                `Revoke the invite made ${new Date(i.createdAt).toLocaleString()}`,
                act(st, async () => {
                  await call('POST', `${api}/invites/${path(i.id)}/revoke`, {})
                  go(location.pathname)
                }),
              )
            : '',
        ],
        'No invites yet.',
      ),
    ),
    createInvite(api),
  )
}

function createInvite(api: string) {
  const write = check('Grant write as well as read', 'write')
  const maxUses = h('input', { type: 'number', name: 'maxUses', min: 1, max: 100000, value: 1 })
  const unlimited = check('No limit on uses', 'unlimited')
  const days = h('input', { type: 'number', name: 'days', min: 1, max: 365, value: 7 })
  const st = statusRegion()
  const form = h(
    'form',
    { class: 'card' },
    h('h3', {}, 'Create an invite'),
    write,
    field('How many may accept it', maxUses),
    unlimited,
    field('Valid for (days)', days),
    h('button', {}, 'Create invite'),
    st,
  )
  onSubmit(form, st, async () => {
    const box = (el: HTMLElement) => el.querySelector('input')!.checked
    const made = await call<Invite>('POST', `${api}/invites`, {
      write: box(write),
      maxUses: box(unlimited) ? null : Number(maxUses.value),
      expiresAt: new Date(Date.now() + Number(days.value) * 86_400_000).toISOString(),
    })
    showSecret(
      'Your invite link',
      made.link ?? '',
      'Send this link to who you invite. Copy it now: it is shown this once.',
      () => go(location.pathname),
    )
  })
  return form
}

/** The join-request queue: approve with flags, deny with a reason; decided ones below. */
export async function requestsTab({ main, api }: SpaceView) {
  const q = new URLSearchParams(location.search)
  const which = (q.get('status') ?? 'pending') as JoinRequest['status']
  const requests = await all<JoinRequest>(
    `${api}/join-requests?status=${which}&limit=1000`,
    'requests',
    1000,
  )
  const st = statusRegion()
  const filter = h(
    'nav',
    { class: 'tabs small', 'aria-label': 'Request status' },
    h(
      'ul',
      {},
      (['pending', 'approved', 'denied'] as const).map((s) =>
        h(
          'li',
          {},
          h(
            'a',
            {
              href: `${location.pathname}?status=${s}`,
              'aria-current': s === which ? 'page' : null,
            },
            s,
          ),
        ),
      ),
    ),
  )
  main.append(
    section(
      'Join requests',
      filter,
      st,
      table(
        `${which[0]!.toUpperCase()}${which.slice(1)} requests, oldest first`,
        which === 'pending'
          ? ['Requester', 'Message', 'Asked', '']
          : ['Requester', 'Message', 'Asked', 'Decided', 'Reason'],
        requests,
        (r) => [
          code(r.did),
          r.message ?? '—',
          when(r.createdAt),
          ...(which === 'pending' ? [decide(api, r)] : [when(r.decidedAt), r.reason ?? '—']),
        ],
        which === 'pending' ? 'No one is waiting.' : `No ${which} requests.`,
      ),
    ),
  )
}

/**
 * A decision made in a dialog: `fields` makes its controls and `send` the call with them; a
 * refusal is said in the dialog, which stays open.
 */
function decision<F>(
  title: string,
  button: string,
  fields: () => [Node, F],
  send: (f: F) => Promise<unknown>,
) {
  return () =>
    openDialog(title, (close) => {
      const [controls, values] = fields()
      const st = statusRegion()
      const form = h('form', {}, controls, h('button', {}, button), st)
      onSubmit(form, st, async () => {
        await send(values)
        close()
        go(location.pathname + location.search)
      })
      return [form]
    })
}

function decide(api: string, r: JoinRequest) {
  const base = `${api}/join-requests/${path(r.id)}`
  const approve = decision(
    `Approve ${r.did}`,
    'Approve',
    () => {
      const write = check('Grant write as well as read', 'write')
      return [write, write.querySelector('input')!]
    },
    (write) => call('POST', `${base}/approve`, { read: true, write: write.checked }),
  )
  const deny = decision(
    `Deny ${r.did}`,
    'Deny',
    () => {
      const reason = h('textarea', { name: 'reason', maxlength: 1000, rows: 3 })
      return [field('Reason (the requester sees it)', reason), reason]
    },
    (reason) =>
      call('POST', `${base}/deny`, reason.value.trim() ? { reason: reason.value.trim() } : {}),
  )
  return h(
    'div',
    { class: 'actions' },
    rowButton('Approve…', `Approve ${r.did}`, approve, 'plain'),
    rowButton('Deny…', `Deny ${r.did}`, deny),
  )
}

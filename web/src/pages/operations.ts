import { all, call, path } from '../api.js'
import {
  act,
  code,
  field,
  go,
  h,
  rowButton,
  say,
  section,
  statusRegion,
  table,
  when,
} from '../dom.js'
import type { Credential, DeadLetter, Registration } from '../types.js'
import type { SpaceView } from './space.js'

/** Issued credentials, and revoking them: one, a member's, an app's, or all. */
export async function credentialsTab({ main, api }: SpaceView) {
  const q = new URLSearchParams(location.search)
  const user = q.get('user') ?? ''
  const list = await call<{ credentials: Credential[] }>(
    'GET',
    `${api}/credentials?limit=200${user ? `&user=${encodeURIComponent(user)}` : ''}`,
  )
  const st = statusRegion()
  const revoke = (body: object, what: string) =>
    act(
      st,
      async () => {
        await call('POST', `${api}/credentials/revoke`, body)
        go(location.pathname + location.search)
      },
      `Revoke ${what}?`,
    )
  const userBox = h('input', { name: 'user', value: user, placeholder: 'did:plc:…' })
  const filter = h(
    'form',
    { method: 'get', class: 'inline', role: 'search' },
    field('Only the credentials of', userBox),
    h('button', {}, 'Filter'),
  )
  const live = (c: Credential) => !c.revokedAt && new Date(c.expiresAt).getTime() > Date.now()
  main.append(
    section(
      'Issued credentials',
      filter,
      st,
      table(
        'Credentials issued, newest first (the latest 200)',
        ['Member', 'App', 'Issued', 'Expires', ''],
        list.credentials,
        (c) => [
          code(c.user),
          c.clientId
            ? [
                code(c.clientId),
                ' ',
                rowButton(
                  'Revoke all',
                  `Revoke all live credentials through ${c.clientId}`,
                  revoke({ clientId: c.clientId }, `every live credential through ${c.clientId}`),
                ),
              ]
            : 'any',
          when(c.issuedAt),
          when(c.expiresAt),
          c.revokedAt
            ? ['revoked ', when(c.revokedAt)]
            : live(c)
              ? rowButton(
                  'Revoke',
                  `Revoke the credential of ${c.user} issued ${new Date(c.issuedAt).toLocaleString()}`,
                  revoke({ credentials: [c.jti] }, 'this credential'),
                )
              : 'expired',
        ],
        'No credentials issued.',
      ),
      user
        ? h(
            'button',
            {
              type: 'button',
              class: 'danger',
              onclick: revoke({ user }, `every live credential of ${user}`),
            },
            `Revoke all of ${user}’s`,
          )
        : h(
            'button',
            {
              type: 'button',
              class: 'danger',
              onclick: revoke({}, 'every live credential of this space'),
            },
            'Revoke all live credentials',
          ),
    ),
  )
}

/** Syncers registered for notifications, and the dead letters the relay gave up on (replay). */
export async function notifyTab({ main, api }: SpaceView) {
  const [registrations, letters] = await Promise.all([
    all<Registration>(`${api}/registrations`, 'registrations'),
    all<DeadLetter>(`${api}/dead-letters`, 'deadLetters'),
  ])
  const st = statusRegion()
  main.append(
    section(
      'Registrations',
      table(
        'Syncers registered for write notifications',
        ['Syncer', 'Endpoint', 'Expires', 'Failed attempts', 'Last error'],
        registrations,
        (r) => [
          code(r.service),
          code(r.endpoint),
          when(r.expiresAt),
          r.attempts,
          r.lastError ?? '—',
        ],
        'No syncer is registered.',
      ),
    ),
    section(
      'Dead letters',
      st,
      table(
        'Notifications given up on, newest first',
        ['Syncer', 'Kind', 'Attempts', 'Last error', 'Since', ''],
        letters,
        (d) => [
          code(d.service),
          d.kind,
          d.attempts,
          d.lastError ?? '—',
          when(d.createdAt),
          rowButton(
            'Replay',
            `Replay the ${d.kind} notification to ${d.service}`,
            act(st, async () => {
              say(st, 'Replaying…')
              const r = await call<{ delivered: boolean; error?: string }>(
                'POST',
                `${api}/dead-letters/${path(d.id)}/replay`,
                {},
              )
              if (r.delivered) go(location.pathname)
              else say(st, `Still refused: ${r.error ?? 'no reason given'}`, 'error')
            }),
            'plain',
          ),
        ],
        'No dead letters: every notification was delivered.',
      ),
    ),
  )
}

import { all, call, failure, path, request } from '../api.js'
import {
  act,
  code,
  copy,
  download,
  field,
  go,
  h,
  onSubmit,
  openDialog,
  rowButton,
  say,
  section,
  statusRegion,
  table,
  when,
} from '../dom.js'
import type { View } from '../main.js'
import type { AuditEntry, Authority, Manager, Space, Token } from '../types.js'
import { authorityHref } from './home.js'
import { presetPicker, spaceHref } from './space.js'

const ROLES = ['owner', 'admin', 'moderator'] as const

const roleSelect = (selected = 'moderator') =>
  h(
    'select',
    { name: 'role' },
    ROLES.map((r) => h('option', { value: r, selected: r === selected }, r)),
  )

/** An authority: its state and keys, its spaces, managers and API tokens. */
export async function authorityPage({ main, params }: View) {
  const did = params[0]!
  const base = `/authorities/${path(did)}`
  const a = await call<Authority>('GET', base)
  main.append(
    h('h1', {}, a.handle ?? 'Authority'),
    h('p', {}, code(a.did)),
    h('p', {}, h('a', { href: authorityHref(did, 'audit') }, 'Audit log')),
  )
  main.append(
    section(
      'Identity',
      h(
        'dl',
        { class: 'facts' },
        h('dt', {}, 'Status'),
        h('dd', {}, h('span', { class: `badge ${a.status}` }, a.status)),
        h('dt', {}, 'Origin'),
        h('dd', {}, a.origin),
        h('dt', {}, 'Names Gatehouse as its PDS'),
        h('dd', {}, a.pdsService ? 'yes' : 'no'),
        h('dt', {}, 'Owner rotation key'),
        h('dd', {}, a.ownerRotationKey ? code(a.ownerRotationKey) : 'none'),
        h('dt', {}, 'Updated'),
        h('dd', {}, when(a.updatedAt)),
      ),
      table(
        'Keys published in the DID document (and retired ones)',
        ['Purpose', 'Status', 'Public key', 'Since'],
        a.keys,
        (k) => [
          k.purpose,
          h('span', { class: `badge ${k.status}` }, k.status),
          code(k.publicKey),
          when(k.retiredAt ?? k.createdAt),
        ],
        'No keys.',
      ),
    ),
  )
  main.append(await documentSection(base))
  main.append(await spacesSection(base))
  main.append(await managersSection(did, base))
  main.append(await tokensSection(did, base))
}

/** The DID document as the world reads it now (its PLC directory or did:web host). */
async function documentSection(base: string) {
  const { document, error } = await call<{ document?: object; error?: string }>(
    'GET',
    `${base}/did-document`,
  )
  return section(
    'DID document as published',
    document
      ? h('pre', { class: 'document', tabindex: '0' }, JSON.stringify(document, null, 2))
      : h('p', { role: 'status' }, `It could not be read: ${error ?? 'no answer'}.`),
  )
}

async function spacesSection(base: string) {
  const spaces = await all<Space>(`${base}/spaces`, 'spaces')
  const out = section(
    'Spaces',
    table(
      'Spaces of this authority',
      ['Space', 'Members', 'Roster', 'Created'],
      spaces,
      (s) => [
        h('a', { href: spaceHref(s.uri) }, s.uri.split('/').slice(-2).join('/')),
        s.members,
        s.rosterVisibility,
        when(s.createdAt),
      ],
      'No spaces yet: create one below.',
    ),
  )
  const type = h('input', {
    name: 'spaceType',
    required: true,
    placeholder: 'com.example.forum',
  })
  const skey = h('input', { name: 'skey', placeholder: 'optional (default: a new TID)' })
  const picker = presetPicker('members-only')
  const st = statusRegion()
  const form = h(
    'form',
    { class: 'card' },
    h('h3', {}, 'Create a space'),
    field('Space type (an NSID)', type),
    field('Record key', skey),
    picker.el,
    h('button', {}, 'Create space'),
    st,
  )
  onSubmit(form, st, async () => {
    say(st, 'Creating…')
    const body = {
      spaceType: type.value.trim(),
      ...(skey.value.trim() ? { skey: skey.value.trim() } : {}),
      ...picker.value(),
    }
    const made = await call<Space>('POST', `${base}/spaces`, body)
    go(spaceHref(made.uri))
  })
  out.append(form)
  return out
}

async function managersSection(did: string, base: string) {
  const managers = await all<Manager>(`${base}/managers`, 'managers')
  const st = statusRegion()
  const out = section(
    'Managers',
    table(
      'Managers of this authority and their roles',
      ['Manager', 'Role', 'Since', ''],
      managers,
      (m) => [
        code(m.did),
        m.role,
        when(m.createdAt),
        rowButton(
          'Remove',
          `Remove ${m.did}`,
          act(
            st,
            async () => {
              await call('DELETE', `${base}/managers/${path(m.did)}`)
              go(authorityHref(did))
            },
            `Remove ${m.did} as a manager?`,
          ),
        ),
      ],
    ),
  )
  const who = h('input', { name: 'did', required: true, placeholder: 'did:plc:…' })
  const role = roleSelect()
  const form = h(
    'form',
    { class: 'card inline' },
    h('h3', {}, 'Grant or change a role'),
    field('Manager DID', who),
    field('Role', role),
    h('button', {}, 'Save role'),
  )
  onSubmit(form, st, async () => {
    await call('PUT', `${base}/managers/${path(who.value.trim())}`, { role: role.value })
    go(authorityHref(did))
  })
  out.append(form, st)
  return out
}

async function tokensSection(did: string, base: string) {
  const st = statusRegion()
  let tokens: Token[]
  try {
    tokens = await all<Token>(`${base}/tokens`, 'tokens', 200)
  } catch (err) {
    return section('API tokens', h('p', { class: 'status error' }, failure(err)))
  }
  const out = section(
    'API tokens',
    table(
      'API tokens (their secrets are never shown again)',
      ['Name', 'Role', 'Limited to', 'Created by', 'Last used', 'Expires', 'State'],
      tokens,
      (t) => [
        t.name,
        t.role,
        t.space ? code(t.space) : 'all spaces',
        code(t.createdBy),
        when(t.lastUsedAt),
        when(t.expiresAt),
        t.revokedAt
          ? ['revoked ', when(t.revokedAt)]
          : rowButton(
              'Revoke',
              `Revoke token ${t.name}`,
              act(
                st,
                async () => {
                  await call('DELETE', `${base}/tokens/${path(t.id)}`)
                  go(authorityHref(did))
                },
                `Revoke the token “${t.name}” and every token it made?`,
              ),
            ),
      ],
      'No API tokens.',
    ),
  )
  const name = h('input', { name: 'name', required: true, maxlength: 100 })
  const role = roleSelect()
  const space = h('input', { name: 'space', placeholder: 'at://… (optional)' })
  const expires = h('input', { name: 'expires', type: 'date' })
  const form = h(
    'form',
    { class: 'card' },
    h('h3', {}, 'Create an API token'),
    field('Name', name),
    field('Role', role, 'Never above your own.'),
    field('Limit to one space', space),
    field('Expires on', expires, 'Leave empty for no expiry.'),
    h('button', {}, 'Create token'),
  )
  onSubmit(form, st, async () => {
    const made = await call<Token>('POST', `${base}/tokens`, {
      name: name.value.trim(),
      role: role.value,
      ...(space.value.trim() ? { space: space.value.trim() } : {}),
      ...(expires.value ? { expiresAt: new Date(`${expires.value}T23:59:59Z`).toISOString() } : {}),
    })
    showSecret(
      'Your new API token',
      made.token ?? '',
      'Copy it now: it is shown this once and never again.',
      () => go(authorityHref(did)),
    )
  })
  out.append(form, st)
  return out
}

/** A secret shown once, in a dialog, with a copy button. */
export function showSecret(title: string, secret: string, note: string, after: () => void) {
  const d = openDialog(title, () => {
    const st = statusRegion()
    const box = h('input', { readonly: true, value: secret, 'aria-label': title, class: 'secret' })
    return [
      h('p', {}, note),
      box,
      h('button', { type: 'button', onclick: () => copy(secret, st) }, 'Copy'),
      st,
    ]
  })
  d.addEventListener('close', after)
}

/** The audit log: filters, the chain's verification, and export. */
export async function auditPage({ main, params }: View) {
  const did = params[0]!
  const base = `/authorities/${path(did)}/audit`
  main.append(
    h('h1', {}, 'Audit log'),
    h('p', {}, h('a', { href: authorityHref(did) }, '← Authority'), ' ', code(did)),
  )
  const q = new URLSearchParams(location.search)
  const input = (name: string, label: string, type = 'text') =>
    field(label, h('input', { name, type, value: q.get(name) ?? '' }))
  const form = h(
    'form',
    { method: 'get', class: 'card filters' },
    h('h2', {}, 'Filter'),
    input('action', 'Action'),
    input('actor', 'Actor DID'),
    input('space', 'Space URI'),
    input('from', 'From (date)', 'date'),
    input('to', 'Before (date)', 'date'),
    h('button', {}, 'Filter'),
  )
  form.addEventListener('submit', (e) => {
    e.preventDefault()
    const next = new URLSearchParams()
    for (const [k, v] of new FormData(form)) if (typeof v === 'string' && v) next.set(k, v)
    go(`${location.pathname}?${next}`)
  })
  const st = statusRegion()
  const tools = h(
    'div',
    { class: 'actions' },
    h(
      'button',
      {
        type: 'button',
        onclick: async () => {
          say(st, 'Verifying the chain…')
          try {
            const r = await call<
              { ok: true; entries: number } | { ok: false; firstBroken: number; why: string }
            >('POST', `${base}/verify`, {})
            if (r.ok) say(st, `The chain is intact: ${r.entries} entries verified.`, 'ok')
            else say(st, `The chain is broken at entry ${r.firstBroken}: ${r.why}`, 'error')
          } catch (err) {
            say(st, failure(err), 'error')
          }
        },
      },
      'Verify the chain',
    ),
    h(
      'button',
      { type: 'button', class: 'secondary', onclick: () => exportAudit(base, did, st) },
      'Export (JSON lines)',
    ),
  )
  main.append(form, tools, st)
  const query = new URLSearchParams({ limit: '200' })
  for (const k of ['action', 'actor', 'space']) if (q.get(k)) query.set(k, q.get(k)!)
  if (q.get('from')) query.set('from', new Date(`${q.get('from')}T00:00:00Z`).toISOString())
  if (q.get('to')) query.set('to', new Date(`${q.get('to')}T00:00:00Z`).toISOString())
  const { entries } = await call<{ entries: AuditEntry[] }>('GET', `${base}?${query}`)
  main.append(
    table(
      'Audit entries, newest first (the latest 200 matching)',
      ['#', 'When', 'Actor', 'Action', 'Space', 'Subject', 'Outcome'],
      entries,
      (e) => [
        e.seq,
        when(e.at),
        code(e.actor),
        e.action,
        e.space ? code(e.space) : '—',
        e.subject ?? '—',
        e.outcome === 'ok'
          ? 'ok'
          : h(
              'span',
              { class: 'badge refused', title: e.reason ?? '' },
              `${e.outcome}${e.reason ? `: ${e.reason}` : ''}`,
            ),
      ],
      'No entries match.',
    ),
  )
}

async function exportAudit(base: string, did: string, st: HTMLElement) {
  say(st, 'Exporting…')
  try {
    const lines = await readLines(await request('GET', `${base}/export`), (n) =>
      say(st, `Exporting… ${n} entries`),
    )
    download(`audit-${did.replace(/[^a-z0-9]+/gi, '-')}.jsonl`, lines)
    say(st, `Exported ${lines.length} entries.`, 'ok')
  } catch (err) {
    say(st, failure(err), 'error')
  }
}

/** Reads a JSON-lines answer, counting lines as they come. */
export async function readLines(
  res: Response,
  progress: (lines: number) => void,
): Promise<string[]> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader()
  const lines: string[] = []
  let rest = ''
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    const parts = (rest + value).split('\n')
    rest = parts.pop()!
    for (const p of parts) if (p) lines.push(`${p}\n`)
    progress(lines.length)
  }
  if (rest) lines.push(`${rest}\n`)
  return lines
}

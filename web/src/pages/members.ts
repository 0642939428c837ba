import { ApiError, call, failure, path, request } from '../api.js'
import {
  act,
  check,
  code,
  download,
  field,
  go,
  h,
  onSubmit,
  rowButton,
  say,
  section,
  statusRegion,
} from '../dom.js'
import type { Member } from '../types.js'
import { readLines } from './authority.js'
import type { SpaceView } from './space.js'

/** Lines per import request: one of the import route's batches. */
export const IMPORT_CHUNK = 1000
/** The largest file the page reads into memory. */
const IMPORT_MAX_BYTES = 64 * 1024 * 1024
const PAGE = 100

/** Members: search, add, change flags, remove, import and export. */
export async function membersTab({ main, space, api }: SpaceView) {
  const q = new URLSearchParams(location.search)
  const search = q.get('search') ?? ''
  const cursor = q.get('cursor') ?? ''
  const st = statusRegion()
  const query = new URLSearchParams({
    limit: String(PAGE),
    ...(search ? { search } : {}),
    ...(cursor ? { cursor } : {}),
  })
  const page = await call<{ members: Member[]; cursor?: string }>('GET', `${api}/members?${query}`)

  const searchBox = h('input', {
    type: 'search',
    name: 'search',
    value: search,
    placeholder: 'did:plc:…',
  })
  const searchForm = h(
    'form',
    { role: 'search', class: 'inline' },
    field('Find members whose DID starts with', searchBox),
    h('button', {}, 'Search'),
  )
  searchForm.addEventListener('submit', (e) => {
    e.preventDefault()
    const v = searchBox.value.trim()
    go(`${location.pathname}${v ? `?search=${encodeURIComponent(v)}` : ''}`)
  })

  const rows = page.members.map((m) => memberRow(api, m, st))
  const list =
    rows.length === 0
      ? h(
          'p',
          { class: 'empty' },
          search
            ? 'No member’s DID starts with that.'
            : 'No members yet: add one, import a list or create an invite.',
        )
      : h(
          'div',
          { class: 'table-wrap' },
          h(
            'table',
            {},
            h(
              'caption',
              {},
              `Members${search ? ` matching “${search}”` : ''} (${space.members} in all)`,
            ),
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                ['Member', 'Read', 'Write', ''].map((c) => h('th', { scope: 'col' }, c)),
              ),
            ),
            h('tbody', {}, rows),
          ),
        )
  const more = page.cursor
    ? h(
        'p',
        {},
        h(
          'a',
          {
            href: `${location.pathname}?${new URLSearchParams({ ...(search ? { search } : {}), cursor: page.cursor })}`,
          },
          'Next page →',
        ),
      )
    : null
  main.append(
    section('Members', searchForm, st, list, more),
    addForm(api),
    importSection(api),
    exportSection(api, space.uri, space.members),
  )
}

function memberRow(api: string, m: Member, st: HTMLElement) {
  const url = `${api}/members/${path(m.did)}`
  const flag = (name: 'read' | 'write') => {
    const input = h('input', {
      type: 'checkbox',
      checked: m[name],
      'aria-label': `${name} for ${m.did}`,
    })
    input.addEventListener('change', async () => {
      const flags = { ...m, [name]: input.checked }
      try {
        await call('PUT', url, { read: flags.read, write: flags.write })
        m[name] = input.checked
        say(st, `${m.did}: ${name} ${input.checked ? 'on' : 'off'}.`, 'ok')
      } catch (err) {
        input.checked = !input.checked
        say(st, failure(err), 'error')
      }
    })
    return input
  }
  const row = h('tr', {})
  const remove = rowButton(
    'Remove',
    `Remove ${m.did}`,
    act(
      st,
      async () => {
        await call('DELETE', url)
        row.remove()
        say(st, `${m.did} removed.`, 'ok')
      },
      `Remove ${m.did}? Its live credentials are revoked.`,
    ),
  )
  row.append(
    h('td', { 'data-label': 'Member' }, code(m.did)),
    h('td', { 'data-label': 'Read' }, flag('read')),
    h('td', { 'data-label': 'Write' }, flag('write')),
    h('td', {}, remove),
  )
  return row
}

function addForm(api: string) {
  const did = h('input', {
    name: 'did',
    required: true,
    placeholder: 'did:plc:…',
    pattern: 'did:[a-z]+:.+',
  })
  const read = check('Read', 'read', true)
  const write = check('Write', 'write', true)
  const st = statusRegion()
  const form = h(
    'form',
    { class: 'card' },
    h('h3', {}, 'Add a member'),
    field('DID', did),
    read,
    write,
    h('button', {}, 'Add member'),
    st,
  )
  onSubmit(form, st, async () => {
    const box = (el: HTMLElement) => el.querySelector('input')!.checked
    await call('PUT', `${api}/members/${path(did.value.trim())}`, {
      read: box(read),
      write: box(write),
    })
    go(`${location.pathname}?search=${encodeURIComponent(did.value.trim())}`)
  })
  return form
}

/** A progress bar with its label, for imports and exports. */
function progressBar(label: string) {
  const bar = h('progress', { max: 1, value: 0, 'aria-label': label })
  return bar
}

function importSection(api: string) {
  const file = h('input', {
    type: 'file',
    name: 'file',
    accept: '.jsonl,.ndjson,.json,application/x-ndjson,text/plain',
    required: true,
  })
  const bar = progressBar('Import progress')
  bar.hidden = true
  const st = statusRegion()
  const form = h(
    'form',
    { class: 'card' },
    h('h3', {}, 'Import members'),
    h(
      'p',
      {},
      'A JSON-lines file: one ',
      code('{"did": "…", "read": true, "write": false}'),
      ' or ',
      code('{"did": "…", "remove": true}'),
      ' a line. Importing again is safe.',
    ),
    field('File', file),
    h('button', {}, 'Import'),
    bar,
    st,
  )
  form.addEventListener('submit', async (e) => {
    e.preventDefault()
    const f = file.files?.[0]
    if (!f) return say(st, 'Choose a file first.', 'error')
    if (f.size > IMPORT_MAX_BYTES)
      return say(st, `The file is over ${IMPORT_MAX_BYTES / 1024 / 1024} MiB: split it.`, 'error')
    const lines = (await f.text())
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
    if (lines.length === 0) return say(st, 'The file has no lines.', 'error')
    const button = form.querySelector('button')!
    button.disabled = true
    bar.hidden = false
    bar.max = lines.length
    let changed = 0
    try {
      for (let at = 0; at < lines.length; at += IMPORT_CHUNK) {
        const chunk = lines.slice(at, at + IMPORT_CHUNK)
        const res = await request('POST', `${api}/members/import`, `${chunk.join('\n')}\n`, {
          'content-type': 'application/x-ndjson',
        }).catch((err: unknown) => {
          // The route names a bad line within this part: name it within the file.
          if (err instanceof ApiError)
            err.message = err.message.replace(
              /line (\d+)/,
              (_, n: string) => `line ${at + Number(n)}`,
            )
          throw err
        })
        changed += ((await res.json()) as { changed: number }).changed
        bar.value = at + chunk.length
        say(st, `Imported ${at + chunk.length} of ${lines.length} lines…`)
      }
      say(st, `Import finished: ${lines.length} lines, ${changed} changed.`, 'ok')
    } catch (err) {
      say(
        st,
        `Import stopped at line ${bar.value + 1}: ${failure(err)}. The lines before it are in; importing the file again is safe.`,
        'error',
      )
    } finally {
      button.disabled = false
    }
  })
  return form
}

function exportSection(api: string, uri: string, total: number) {
  const bar = progressBar('Export progress')
  bar.hidden = true
  const st = statusRegion()
  const button = h(
    'button',
    {
      type: 'button',
      onclick: async () => {
        button.disabled = true
        bar.hidden = false
        bar.max = Math.max(total, 1)
        try {
          const lines = await readLines(await request('GET', `${api}/members/export`), (n) => {
            bar.value = Math.min(n, bar.max)
            say(st, `Exported ${n} of ${total} members…`)
          })
          bar.value = bar.max
          download(`members-${uri.split('/').pop()}.jsonl`, lines)
          say(st, `Export finished: ${lines.length} members.`, 'ok')
        } catch (err) {
          say(st, failure(err), 'error')
        } finally {
          button.disabled = false
        }
      },
    },
    'Export members',
  )
  return section(
    'Export',
    h('p', {}, 'The member list as JSON lines, in the import format.'),
    button,
    bar,
    st,
  )
}

import { failure } from './api.js'

/** Small DOM helpers: the dashboard builds every node with these (no HTML strings, no framework). */

type Child = Node | string | number | null | undefined | false
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>

/** An element: `attrs` starting with `on` are listeners, `true` is a bare attribute, null/false none. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (typeof v === 'function') el.addEventListener(k.slice(2), v)
    else if (v === true) el.setAttribute(k, '')
    else if (v !== false && v !== null && v !== undefined) el.setAttribute(k, String(v))
  }
  for (const c of children.flat())
    if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c))
  return el
}

/** An SVG element (charts). */
export function svg(tag: string, attrs: Record<string, string | number> = {}, ...children: Node[]) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag)
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v))
  el.append(...children)
  return el
}

/** A live region's text: loading, progress, results and errors are announced. */
export function say(region: HTMLElement, text: string, kind: 'info' | 'error' | 'ok' = 'info') {
  region.textContent = text
  region.className = `status ${kind}`
}

export const statusRegion = () => h('p', { role: 'status', 'aria-live': 'polite', class: 'status' })

let ids = 0
/** A unique id for label/for pairs. */
export const uid = (prefix = 'f') => `${prefix}${++ids}`

/** A labelled control: the label above its input. */
export function field(
  label: string,
  control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement,
  hint?: string,
) {
  control.id ||= uid()
  const hintEl = hint ? h('span', { class: 'hint', id: `${control.id}-hint` }, hint) : null
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id)
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, hintEl)
}

/** A checkbox with its label after it. */
export function check(label: string, name: string, checked = false) {
  const input = h('input', { type: 'checkbox', name, id: uid(), checked })
  return h('div', { class: 'check' }, input, h('label', { for: input.id }, label))
}

/** A table with a caption and a header row; an empty list says so instead. */
export function table<T>(
  caption: string,
  columns: string[],
  rows: T[],
  cells: (row: T) => (Child | Child[])[],
  empty = 'Nothing here yet.',
) {
  if (rows.length === 0) return h('p', { class: 'empty' }, empty)
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      {},
      h('caption', {}, caption),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          columns.map((c) => h('th', { scope: 'col' }, c)),
        ),
      ),
      h(
        'tbody',
        {},
        rows.map((r) =>
          h(
            'tr',
            {},
            cells(r).map((c, i) => h('td', { 'data-label': columns[i] }, c)),
          ),
        ),
      ),
    ),
  )
}

export const when = (iso: string | null | undefined) =>
  iso ? h('time', { datetime: iso }, new Date(iso).toLocaleString()) : '—'

export const code = (text: string) => h('code', { class: 'wrap' }, text)

/** A section with its own heading. */
export function section(title: string, ...children: (Child | Child[])[]) {
  const heading = h('h2', { id: uid('h') }, title)
  return h('section', { 'aria-labelledby': heading.id }, heading, ...children)
}

/**
 * A modal dialog: focus moves into it when it opens and back to what opened it when it closes
 * (Escape closes it too: the native <dialog> does that).
 */
export function openDialog(title: string, body: (close: () => void) => Node[]): HTMLDialogElement {
  const opener = document.activeElement as HTMLElement | null
  const heading = h('h2', { id: uid('d'), tabindex: -1 }, title)
  const dialog = h('dialog', { 'aria-labelledby': heading.id })
  const close = () => dialog.close()
  dialog.append(
    heading,
    ...body(close),
    h('button', { type: 'button', class: 'secondary', onclick: close }, 'Close'),
  )
  dialog.addEventListener('close', () => {
    dialog.remove()
    opener?.focus()
  })
  document.body.append(dialog)
  dialog.showModal()
  heading.focus()
  return dialog
}

/** Copies text, saying so in `region`. */
export async function copy(text: string, region: HTMLElement) {
  try {
    await navigator.clipboard.writeText(text)
    say(region, 'Copied.', 'ok')
  } catch {
    say(region, 'Could not copy: select the text and copy it yourself.', 'error')
  }
}

/** Saves `chunks` as a file the browser downloads. */
export function download(name: string, chunks: BlobPart[], type = 'application/x-ndjson') {
  const url = URL.createObjectURL(new Blob(chunks, { type }))
  const a = h('a', { href: url, download: name })
  document.body.append(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 10_000)
}

/** Follows a link inside the dashboard without reloading (main.ts redraws on popstate). */
export function go(href: string) {
  history.pushState(null, '', href)
  window.dispatchEvent(new PopStateEvent('popstate'))
}

/** Runs a page's action; a failure is said in `region` (the API's own name and message). */
async function attempt(region: HTMLElement, action: () => Promise<unknown>) {
  try {
    await action()
  } catch (err) {
    say(region, failure(err), 'error')
  }
}

/** A form's submission runs `action` instead of leaving the page. */
export function onSubmit(
  form: HTMLFormElement,
  region: HTMLElement,
  action: () => Promise<unknown>,
) {
  form.addEventListener('submit', (e) => {
    e.preventDefault()
    void attempt(region, action)
  })
}

/** A button's action, asking `question` first when there is one (for what cannot be undone). */
export const act =
  (region: HTMLElement, action: () => Promise<unknown>, question?: string) => () => {
    if (question && !confirm(question)) return
    void attempt(region, action)
  }

/** A small button in a table row: `label` shown, `name` (what it acts on) for screen readers. */
export const rowButton = (
  label: string,
  name: string,
  onclick: () => void,
  kind: 'danger' | 'plain' = 'danger',
) =>
  h(
    'button',
    {
      type: 'button',
      class: kind === 'danger' ? 'danger small' : 'small',
      'aria-label': name,
      onclick,
    },
    label,
  )

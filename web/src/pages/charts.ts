import { ApiError, call } from '../api.js'
import { h, section, svg, table, uid } from '../dom.js'

/** One series of a chart: its name, the CSS class that colours it, and one value per category. */
interface Series {
  name: string
  cls: string
  values: number[]
}

const W = 600
const H = 220
const PAD = { left: 44, right: 8, top: 10, bottom: 40 }

/** A round axis maximum at or above `max`. */
function niceMax(max: number) {
  if (max <= 4) return 4
  const step = 10 ** Math.floor(Math.log10(max))
  return Math.ceil(max / step) * step
}

/**
 * A chart as inline SVG built node by node (no inline styles: classes colour it), with its data
 * as a table beside it for screen readers and anyone who would rather read numbers.
 */
function chart(title: string, kind: 'bars' | 'line', categories: string[], series: Series[]) {
  const captionId = uid('c')
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values)))
  const plotW = W - PAD.left - PAD.right
  const plotH = H - PAD.top - PAD.bottom
  const y = (v: number) => PAD.top + plotH - (v / max) * plotH
  const band = plotW / Math.max(categories.length, 1)
  const g = svg('g')
  for (const t of [0, max / 2, max]) {
    g.append(
      svg('line', { x1: PAD.left, x2: W - PAD.right, y1: y(t), y2: y(t), class: 'grid' }),
      svg(
        'text',
        { x: PAD.left - 6, y: y(t) + 4, class: 'axis end' },
        document.createTextNode(String(t)),
      ),
    )
  }
  const every = Math.ceil(categories.length / 8)
  categories.forEach((c, i) => {
    if (i % every === 0)
      g.append(
        svg(
          'text',
          { x: PAD.left + band * (i + 0.5), y: H - PAD.bottom + 16, class: 'axis middle' },
          document.createTextNode(c),
        ),
      )
  })
  series.forEach((s, si) => {
    if (kind === 'bars') {
      const w = (band * 0.8) / series.length
      s.values.forEach((v, i) =>
        g.append(
          svg('rect', {
            x: PAD.left + band * (i + 0.1) + w * si,
            y: y(v),
            width: Math.max(w - 1, 1),
            height: y(0) - y(v),
            class: s.cls,
          }),
        ),
      )
    } else {
      const points = s.values.map((v, i) => `${PAD.left + band * (i + 0.5)},${y(v)}`).join(' ')
      g.append(svg('polyline', { points, class: `line ${s.cls}` }))
    }
  })
  const legend = h(
    'ul',
    { class: 'legend', 'aria-hidden': 'true' },
    series.map((s) => h('li', {}, h('span', { class: `swatch ${s.cls}` }), s.name)),
  )
  const picture = svg(
    'svg',
    { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': captionId, class: 'chart' },
    g,
  )
  const data = table(
    title,
    ['', ...series.map((s) => s.name)],
    categories.map((c, i) => [c, ...series.map((s) => s.values[i] ?? 0)]),
    (r) => r,
  )
  return h(
    'figure',
    {},
    h('figcaption', { id: captionId }, title),
    picture,
    legend,
    h('details', {}, h('summary', {}, `${title}: the numbers`), data),
  )
}

/** Draws one chart from its API path, or says why it cannot. */
async function load(title: string, route: string, draw: (data: never) => HTMLElement | string) {
  try {
    const out = draw(await call<never>('GET', route))
    return typeof out === 'string'
      ? h('figure', {}, h('figcaption', {}, title), h('p', { class: 'empty' }, out))
      : out
  } catch (err) {
    const why =
      err instanceof ApiError && err.status === 404
        ? 'not available on this server'
        : err instanceof Error
          ? err.message
          : String(err)
    return h(
      'figure',
      {},
      h('figcaption', {}, title),
      h('p', { class: 'empty' }, `Chart unavailable: ${why}.`),
    )
  }
}

const day = (iso: string) => iso.slice(5, 10)

interface Counts {
  delivered: number
  failed: number
}

/** Each syncer's deliveries and failures over the days. */
function perSyncer(days: (Counts & { syncers: (Counts & { service: string })[] })[]) {
  const sums = new Map<string, Counts>()
  for (const d of days)
    for (const s of d.syncers) {
      const sum = sums.get(s.service) ?? { delivered: 0, failed: 0 }
      sum.delivered += s.delivered
      sum.failed += s.failed
      sums.set(s.service, sum)
    }
  return [...sums]
}

/**
 * The space's charts over the last 30 UTC days (docs/rest-api.md, "Statistics for charts"):
 * credentials per day, members over time, deliveries per syncer.
 */
export async function chartsSection(api: string) {
  const figures = await Promise.all([
    load(
      'Credentials issued and refused per day',
      `${api}/stats/credentials`,
      (d: { days: { day: string; issued: number; refused: number }[] }) =>
        d.days.every((x) => x.issued + x.refused === 0)
          ? 'No credentials asked for in the last 30 days.'
          : chart(
              'Credentials issued and refused per day',
              'bars',
              d.days.map((x) => day(x.day)),
              [
                { name: 'Issued', cls: 's1', values: d.days.map((x) => x.issued) },
                { name: 'Refused', cls: 's2', values: d.days.map((x) => x.refused) },
              ],
            ),
    ),
    load(
      'Members over time',
      `${api}/stats/members`,
      (d: { days: { day: string; members: number | null }[] }) => {
        // Days older than the oplog's history are unknown (null): the line starts after them.
        const known = d.days.filter(
          (x): x is { day: string; members: number } => x.members !== null,
        )
        return known.length === 0
          ? 'No member history yet.'
          : chart(
              'Members over time',
              'line',
              known.map((x) => day(x.day)),
              [{ name: 'Members', cls: 's1', values: known.map((x) => x.members) }],
            )
      },
    ),
    load(
      'Notifications delivered and failed per syncer',
      `${api}/stats/deliveries`,
      (d: { days: (Counts & { syncers: (Counts & { service: string })[] })[] }) => {
        const syncers = perSyncer(d.days)
        return syncers.length === 0
          ? 'No notifications sent in the last 30 days.'
          : chart(
              'Notifications delivered and failed per syncer, last 30 days',
              'bars',
              syncers.map(([service]) => service.replace(/^did:web:/, '')),
              [
                { name: 'Delivered', cls: 's1', values: syncers.map(([, c]) => c.delivered) },
                { name: 'Failed', cls: 's2', values: syncers.map(([, c]) => c.failed) },
              ],
            )
      },
    ),
  ])
  return section('Activity', h('div', { class: 'charts' }, figures))
}

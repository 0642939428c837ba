/**
 * The logger: per-request loggers made only when something is logged through them, writing what a
 * pino child would have written.
 */
import t from 'tap'
import { createLogger, lazyChild } from '../src/logger.js'
import { LogCapture } from './_helpers/logs.js'

function world(level: 'info' | 'warn') {
  const logs = new LogCapture()
  const parent = createLogger({ level, destination: logs })
  let children = 0
  const child = parent.child.bind(parent)
  parent.child = ((...args: Parameters<typeof child>) => {
    children++
    return child(...args)
  }) as typeof parent.child
  return { logs, parent, made: () => children }
}

t.test('a request logger is made only when a line is written through it', async (t) => {
  const quiet = world('warn')
  // Fastify passes the server's level for every route.
  const lazy = lazyChild(quiet.parent, { reqId: 'r-1' }, { level: 'warn' })
  lazy.info({ a: 1 }, 'below the level')
  lazy.debug('below the level')
  t.equal(quiet.made(), 0, 'nothing made for lines below the level')
  t.equal(quiet.logs.lines.length, 0)
  t.equal(lazy.level, 'warn')
  t.equal(lazy.isLevelEnabled('info'), false)
  lazy.warn({ token: 'hunter2' }, 'at the level')
  t.equal(quiet.made(), 1, 'made for the first line written')
  lazy.error('again')
  t.equal(quiet.made(), 1, 'and only once')
  t.match(quiet.logs.entries, [
    { reqId: 'r-1', level: 40, msg: 'at the level', token: '[redacted]', service: 'gatehouse' },
    { reqId: 'r-1', level: 50, msg: 'again' },
  ])

  const loud = world('info')
  const direct = loud.parent.child({ reqId: 'r-2' })
  direct.info({ x: 1 }, 'line')
  lazyChild(loud.parent, { reqId: 'r-2' }, {}).info({ x: 1 }, 'line')
  const [a, b] = loud.logs.entries
  t.same({ ...b, time: 0 }, { ...a, time: 0 }, 'the same line a child writes')
  t.same(Object.keys(b!), Object.keys(a!), 'fields in the same order')

  const own = world('warn')
  lazyChild(own.parent, { reqId: 'r-3' }, { level: 'debug' }).debug('own level')
  t.match(own.logs.entries, [{ reqId: 'r-3', msg: 'own level' }], 'a level of its own is kept')
})

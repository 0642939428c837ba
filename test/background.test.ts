/**
 * The in-process background queue: tasks never fail their caller, failures are logged, processAll
 * waits for tasks added while waiting, and destroy drains then refuses new work.
 */
import t from 'tap'
import { BackgroundQueue } from '../src/background.js'
import { createLogger } from '../src/logger.js'
import { LogCapture } from './_helpers/logs.js'

function queue() {
  const logs = new LogCapture()
  return { q: new BackgroundQueue(createLogger({ level: 'debug', destination: logs })), logs }
}

t.test('runs tasks and waits for tasks they add', async (t) => {
  const { q } = queue()
  const done: string[] = []
  q.add('outer', async () => {
    await new Promise((r) => setTimeout(r, 10))
    done.push('outer')
    q.add('inner', async () => {
      await new Promise((r) => setTimeout(r, 10))
      done.push('inner')
    })
  })
  await q.processAll()
  t.same(done, ['outer', 'inner'])
  t.equal(q.size, 0)
})

t.test('a failing task is logged, not thrown', async (t) => {
  const { q, logs } = queue()
  q.add('explodes', async () => {
    throw new Error('kaboom')
  })
  await q.processAll()
  const entry = logs.entries.find((e) => e.msg === 'background task failed')
  t.match(entry, { task: 'explodes', level: 50 })
  t.match(JSON.stringify(entry), /kaboom/)
})

t.test('destroy drains running work, then refuses more', async (t) => {
  const { q, logs } = queue()
  let finished = false
  q.add('slow', async () => {
    await new Promise((r) => setTimeout(r, 20))
    finished = true
  })
  await q.destroy()
  t.ok(finished)
  let ran = false
  q.add('late', async () => {
    ran = true
  })
  await q.processAll()
  t.notOk(ran)
  t.ok(logs.entries.some((e) => e.msg === 'background task refused: shutting down'))
})

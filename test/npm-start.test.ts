/**
 * `npm start`, the README's way to run Gatehouse, as a process manager and a terminal drive it:
 * SIGTERM to npm's pid stops the server gracefully and leaves no process behind (npm's shell used
 * to die and orphan a server that went on serving), and a Ctrl-C that reaches the whole process
 * group (npm passes it on again) is still one graceful shutdown.
 *
 * The real npm runs the real `start` script from package.json in a package of the test's own,
 * whose dist/bin.js loads src/bin.ts through tsx, so the test does not compile the project: the
 * process tree (npm, then whatever the script starts) is the one a deployment gets.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { platform, tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import t, { type Test } from 'tap'
import { PACKAGE_ROOT } from '../src/paths.js'
import { freePort, portFree, runCommand, type RunningProcess } from './_helpers/process.js'

/** Far above the server's own shutdown timeout (10 s): only a server that never stops hits it. */
const GUARD_MS = 45_000

/** A package whose `start` script is the real one, and whose dist/bin.js runs the source. */
function startPackage(dir: string): void {
  const real = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>
  }
  const pkg = { name: 'gatehouse-start-test', private: true, type: 'module', scripts: {} }
  Object.assign(pkg.scripts, { start: real.scripts.start })
  writeFileSync(join(dir, 'package.json'), JSON.stringify(pkg))
  const tsx = import.meta.resolve('tsx/esm/api')
  mkdirSync(join(dir, 'dist'))
  writeFileSync(
    join(dir, 'dist/bin.js'),
    `import { register } from ${JSON.stringify(tsx)}\n` +
      `register()\n` +
      `await import(${JSON.stringify(pathToFileURL(join(PACKAGE_ROOT, 'src/bin.ts')).href)})\n`,
  )
}

/** Whether any process of the group `pgid` is still alive. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0)
    return true
  } catch {
    return false
  }
}

async function until(what: string, ok: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + GUARD_MS
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** `npm start` in a package of the test's own, serving on a free port; killed if the test fails. */
async function npmStart(t: Test): Promise<{ npm: RunningProcess; port: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-npm-start-'))
  startPackage(dir)
  const port = await freePort()
  const npm = runCommand('npm', ['start'], {
    cwd: dir,
    detached: true,
    env: {
      HOME: dir,
      npm_config_update_notifier: 'false',
      GATEHOUSE_PORT: String(port),
      GATEHOUSE_DATA_DIR: join(dir, 'data'),
    },
  })
  const pgid = npm.child.pid!
  t.teardown(() => {
    if (groupAlive(pgid)) process.kill(-pgid, 'SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  })
  await npm.waitFor(/gatehouse is serving/, GUARD_MS)
  return { npm, port }
}

const posixOnly = { skip: platform() === 'win32' && 'process groups and signals are POSIX' }

t.test(
  'SIGTERM to `npm start` stops the server gracefully, leaving nothing',
  posixOnly,
  async (t) => {
    const { npm, port } = await npmStart(t)
    const pgid = npm.child.pid!
    t.equal((await fetch(`http://127.0.0.1:${port}/xrpc/_health`)).status, 200)

    npm.child.kill('SIGTERM')
    const guard = setTimeout(() => process.kill(-pgid, 'SIGKILL'), GUARD_MS)
    const { code } = await npm.exited
    t.teardown(() => clearTimeout(guard))
    t.equal(code, 0, 'npm reports the server’s clean exit')
    t.ok(
      npm.stdout.some((l) => /shut down cleanly/.test(l)),
      'the server drained and shut down',
    )
    await until('no process of the group is left', () => !groupAlive(pgid))
    t.ok(await portFree(port), 'the port is free')
  },
)

t.test('a Ctrl-C to the whole group is one graceful shutdown', posixOnly, async (t) => {
  const { npm, port } = await npmStart(t)
  const pgid = npm.child.pid!
  // What a terminal does: the signal goes to every process of the foreground group, and npm
  // passes it on to the server again. The two often merge into one pending signal; a second
  // forward once the server is shutting down makes sure the server sees one arrive late.
  process.kill(-pgid, 'SIGINT')
  await npm.waitFor(/shutting down/, GUARD_MS)
  npm.child.kill('SIGINT')
  const guard = setTimeout(() => process.kill(-pgid, 'SIGKILL'), GUARD_MS)
  const { code } = await npm.exited
  t.teardown(() => clearTimeout(guard))
  t.equal(code, 0)
  t.ok(npm.stdout.some((l) => /shut down cleanly/.test(l)))
  t.notOk(
    npm.stdout.some((l) => /second signal/.test(l)),
    'npm passing the signal on is not a second signal',
  )
  await until('no process of the group is left', () => !groupAlive(pgid))
  t.ok(await portFree(port))
})

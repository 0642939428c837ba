/**
 * The README's tutorial, run as written: its shell blocks, in order, in one bash, in a package whose
 * `npm start` and `dist/bin.js` run the source (as test/npm-start.test.ts does), on free ports
 * instead of 2590 and 2591. Nothing else is changed, so the README cannot drift from what works.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import t from 'tap'
import { PACKAGE_ROOT } from '../src/paths.js'
import { freePort, runCommand } from './_helpers/process.js'

/** The shell blocks of the README's tutorial section, joined. */
function tutorialScript(): string {
  const readme = readFileSync(join(PACKAGE_ROOT, 'README.md'), 'utf8')
  const section = readme.split(/^## /m).find((s) => s.startsWith('Ten-minute tutorial'))
  if (!section) throw new Error('README.md has no "## Ten-minute tutorial" section')
  return [...section.matchAll(/^```sh\n([\s\S]*?)^```/gm)].map((m) => m[1]).join('\n')
}

t.test(
  'the README tutorial: a member gets a credential, a syncer gets a notification',
  async (t) => {
    const script = tutorialScript()
    t.match(script, /gatehouse dev app/, 'the tutorial ends with the member app')
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-tutorial-'))
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({
        name: 'gatehouse-tutorial-test',
        private: true,
        type: 'module',
        scripts: {
          start: JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')).scripts.start,
        },
      }),
    )
    mkdirSync(join(dir, 'dist'))
    writeFileSync(
      join(dir, 'dist/bin.js'),
      `import { register } from ${JSON.stringify(import.meta.resolve('tsx/esm/api'))}\n` +
        `register()\n` +
        `await import(${JSON.stringify(pathToFileURL(join(PACKAGE_ROOT, 'src/bin.ts')).href)})\n`,
    )
    const ports = { 2590: await freePort(), 2591: await freePort() }
    const [invitee, asker] = [await freePort(), await freePort()]
    const run = runCommand(
      'bash',
      [
        '-euc',
        script
          .replaceAll('2590', String(ports[2590]))
          .replaceAll('2591', String(ports[2591]))
          .replaceAll('2592', String(invitee))
          .replaceAll('2593', String(asker)),
      ],
      {
        cwd: dir,
        detached: true,
        env: {
          HOME: dir,
          npm_config_update_notifier: 'false',
          GATEHOUSE_PORT: String(ports[2590]),
        },
      },
    )
    // The server the script started in the background goes with the script's process group.
    t.teardown(async () => {
      const alive = () => {
        try {
          process.kill(-run.child.pid!, 0)
          return true
        } catch {
          return false
        }
      }
      if (alive()) process.kill(-run.child.pid!, 'SIGTERM')
      for (let i = 0; i < 300 && alive(); i++) await new Promise((r) => setTimeout(r, 50))
      rmSync(dir, { recursive: true, force: true })
    })
    const guard = setTimeout(() => run.child.kill(), 120_000)
    const { code } = await run.exited
    clearTimeout(guard)
    const serverLog = () => {
      try {
        return readFileSync(join(dir, 'gatehouse.log'), 'utf8')
      } catch {
        return '(none)'
      }
    }
    const log = () =>
      `stdout:\n${run.stdout.join('\n')}\nstderr:\n${run.stderr.join('\n')}\n` +
      `gatehouse.log:\n${serverLog()}`
    if (code !== 0) t.comment(log())
    t.equal(code, 0, 'the script runs to its end')
    const steps = run.stdout
      .filter((l) => l.startsWith('{"step"'))
      .map((l) => JSON.parse(l) as { step: string; got?: { status?: number; body?: any } })
    const exchange = steps.find((s) => s.step === 'com.atproto.space.getSpaceCredential')
    t.equal(exchange?.got?.status, 200, 'the exchange succeeded')
    t.match(
      exchange?.got?.body?.credential,
      /^ey[\w-]+\.[\w-]+\.[\w-]+$/,
      'the member holds a credential',
    )
    const note = steps.find((s) => s.step === 'notification received')
    t.match(
      note?.got,
      { path: '/xrpc/com.atproto.space.notifyWrite', body: { spaceRev: /^[a-z2-7]{13}$/ } },
      'the syncer received the relayed notification',
    )
    const json = run.stdout.filter((l) => l.startsWith('{"')).map((l) => JSON.parse(l) as any)
    t.ok(
      json.some((o) => /\/space\/com\.example\.forum\/news$/.test(o.uri) && o.members === 0),
      'the manager created a space over REST',
    )
    t.ok(
      json.some((o) => o.members?.[0]?.did === 'did:web:friend.example' && !o.members[0].write),
      'and listed the member they added',
    )
    const accepted = steps.find((s) => s.step === 'dev.gatehouse.space.acceptInvite')
    t.match(accepted?.got, { status: 200, body: { read: true, write: true } }, 'invite accepted')
    const exchanges = steps.filter((s) => s.step === 'com.atproto.space.getSpaceCredential')
    t.same(
      exchanges.map((s) => s.got?.status),
      [200, 200],
      'and the invitee, now a member, holds a credential too',
    )
    const asked = steps.find((s) => s.step === 'dev.gatehouse.space.requestJoin')
    t.match(asked?.got, { status: 200, body: { status: 'pending' } }, 'a join request made')
    t.ok(
      json.some((o) => o.status === 'approved' && o.did === `did:web:localhost%3A${asker}`),
      'and approved',
    )
    t.match(run.stdout.join('\n'), /"ok": true/, 'the audit chain verifies')
  },
)

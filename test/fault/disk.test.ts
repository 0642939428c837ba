/**
 * A full disk or a read-only database under a running `gatehouse serve`: every request that writes
 * answers 503 ServiceUnavailable (never a 500, never a 4xx a repo host would drop), reads go on,
 * nothing is half-written, and once the fault clears the service is whole: without a restart for a
 * full disk (SQLite on a small tmpfs; a PostgreSQL tablespace on one) and for PostgreSQL made
 * read-only (`default_transaction_read_only`); after fsck and a restart for a filesystem the kernel
 * turned read-only under SQLite (ext4 `errors=remount-ro`, which cannot be undone while mounted).
 * The filesystems need root and `mount` (and loop devices for ext4): without them the SQLite
 * tests skip saying so. The PostgreSQL ones run in CI's PostgreSQL leg on a cluster of their own.
 */
import { execFileSync } from 'node:child_process'
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, statfsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import t from 'tap'
import { PACKAGE_ROOT } from '../../src/paths.js'
import type { AppContext } from '../../src/context.js'
import type { TestLike } from '../_helpers/arbiter.js'
import { processWorld, testPostgresUrl } from '../_helpers/db.js'
import { freePort } from '../_helpers/process.js'
import { serveEnv, startServe } from '../_helpers/serve.js'
import { exchangeAt, memberDigestMatches, sideContext, sideWorld } from '../_helpers/spaces.js'
import { postNotifyWrite } from '../_helpers/sync.js'
import { encodeTid } from '../../src/spaces/tid.js'
import { presentHeaders, serviceJwt } from '../_helpers/tokens.js'

const run = (cmd: string, ...args: string[]) =>
  execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim()
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const nowSec = () => Math.floor(Date.now() / 1000)

/** Why scratch filesystems of `kind` cannot be made here (a skip reason), or false. */
function cannotMount(kind: 'tmpfs' | 'ext4'): string | false {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-mnt-'))
  try {
    if (kind === 'tmpfs') run('mount', '-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir)
    else {
      const image = `${dir}.img`
      run('truncate', '-s', '4M', image)
      try {
        run('mkfs.ext4', '-q', image)
        run('mount', '-o', 'loop', image, dir)
      } finally {
        rmSync(image, { force: true })
      }
    }
    run('umount', dir)
    return false
  } catch (err) {
    const why = String((err as { stderr?: string }).stderr || (err as Error).message).split('\n')[0]
    return `needs root and mount${kind === 'ext4' ? ' with loop devices and mkfs.ext4' : ''}: ${why}`
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const pgUrl = testPostgresUrl()
const sqliteOnly = (kind: 'tmpfs' | 'ext4') => ({
  skip: pgUrl ? 'SQLite only (the PostgreSQL leg runs the PostgreSQL tests)' : cannotMount(kind),
})

/** A tmpfs of `sizeMb` mounted for the test, with its own directory. */
function tmpfs(t: TestLike, sizeMb: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-tmpfs-'))
  run('mount', '-t', 'tmpfs', '-o', `size=${sizeMb}m`, 'tmpfs', dir)
  t.teardown(() => {
    run('umount', '-l', dir)
    rmSync(dir, { recursive: true, force: true })
  })
  return dir
}

/** Fills the filesystem of `dir` to the last byte with a file; returns what removes it. */
function fill(dir: string): () => void {
  const filler = join(dir, 'filler')
  const { bavail, bsize } = statfsSync(dir)
  try {
    appendFileSync(filler, Buffer.alloc(Number(bavail) * Number(bsize)))
  } catch {
    // Short by the filesystem's own bookkeeping: topped up below.
  }
  for (let chunk = 64 * 1024; chunk >= 1; chunk = Math.floor(chunk / 2)) {
    try {
      for (;;) appendFileSync(filler, Buffer.alloc(chunk))
    } catch {
      // ENOSPC at this size: try a smaller one.
    }
  }
  return () => rmSync(filler, { force: true })
}

type Answer = { status: number; body?: { error?: string; message?: string } }

/**
 * A `gatehouse serve` on `env` with a writer, a reader holding a credential and an admin, and the
 * requests to throw at it: three that write (a notifyWrite, a credential exchange, a putMember, the
 * last through a Prisma transaction) and two that only read.
 */
async function faultWorld(t: TestLike, env: Record<string, string>) {
  let server = await startServe(t, env)
  const { ctx, web, authority, space } = await sideWorld(t, env, 'fault')
  const writer = web.create('writer')
  const reader = web.create('reader')
  const admin = web.create('admin')
  await ctx.spaces.putMember(space, writer.did, { read: true, write: true })
  await ctx.spaces.putMember(space, reader.did, { read: true, write: false })
  await ctx.managers.change(authority.did, admin.did, 'admin', 'operator')

  const call = async (path: string, init?: RequestInit): Promise<Answer> => {
    const res = await fetch(`${server.url}${path}`, init)
    const text = await res.text()
    return { status: res.status, body: text ? (JSON.parse(text) as Answer['body']) : undefined }
  }
  const exchange = () => exchangeAt(server.url, space, { user: reader })
  const asAdmin = (lxm: string) => ({
    authorization: `Bearer ${serviceJwt({ iss: admin, aud: authority.did, lxm, nowSec: nowSec() })}`,
  })

  let rev = BigInt(Date.now()) * 1000n
  /** The writer's last repoRev the server acknowledged; the DIDs of putMembers refused. */
  const state = { acknowledged: '', refusedMembers: [] as string[] }
  let memberN = 0
  const writes = {
    notifyWrite: async (): Promise<Answer> => {
      const repoRev = encodeTid(++rev, 0)
      const answer = await postNotifyWrite(server.url, {
        authority: authority.did,
        space,
        writer,
        repoRev,
      })
      if (answer.status === 200) state.acknowledged = repoRev
      return answer
    },
    getSpaceCredential: exchange,
    putMember: async (): Promise<Answer> => {
      const did = `did:plc:${String(++memberN).padStart(24, 'm')}`
      const lxm = 'com.atproto.simplespace.putMember'
      const res = await call(`/xrpc/${lxm}`, {
        method: 'POST',
        headers: { ...asAdmin(lxm), 'content-type': 'application/json' },
        body: JSON.stringify({ space, did, read: true, write: false }),
      })
      if (res.status !== 200) state.refusedMembers.push(did)
      return res
    },
  }
  const first = await exchange()
  const credential = (first.body as { credential: string }).credential
  const reads = {
    getSpace: () =>
      call(`/xrpc/com.atproto.simplespace.getSpace?${new URLSearchParams({ space })}`, {
        headers: presentHeaders(credential, authority.did, first.holder),
      }),
    listMembers: () =>
      call(`/xrpc/com.atproto.simplespace.listMembers?${new URLSearchParams({ space })}`, {
        headers: asAdmin('com.atproto.simplespace.listMembers'),
      }),
  }
  return {
    ctx,
    space,
    writer,
    writes,
    reads,
    state,
    call,
    /** Stops the server (SIGKILL). */
    async stop() {
      server.proc.child.kill('SIGKILL')
      await server.proc.exited
    },
    async restart() {
      server = await startServe(t, env)
    },
  }
}

type World = Awaited<ReturnType<typeof faultWorld>>

/** Every kind of write answers before the fault. */
async function beforeFault(t: Tap, w: World) {
  for (const [name, write] of Object.entries(w.writes))
    t.equal((await write()).status, 200, `${name}: 200 before the fault`)
}

type Tap = Pick<typeof t, 'equal' | 'ok' | 'match' | 'same' | 'comment'>

/**
 * Under the fault: each kind of write, repeated until refused (a full disk may still take what fits
 * in pages already allocated), is refused with 503 ServiceUnavailable; reads are served.
 */
async function underFault(t: Tap, w: World, attempts: number) {
  for (const [name, write] of Object.entries(w.writes)) {
    let answer: Answer = { status: 200 }
    let n = 0
    while (answer.status === 200 && n++ < attempts) answer = await write()
    t.match(
      answer,
      { status: 503, body: { error: 'ServiceUnavailable', message: String } },
      `${name}: 503 ServiceUnavailable (after ${n} tries)`,
    )
  }
  for (const [name, read] of Object.entries(w.reads))
    t.equal((await read()).status, 200, `${name}: still served`)
  t.equal((await w.call('/xrpc/_health')).status, 200, 'alive')
}

/** Once the fault is gone: every write answers again and the database is whole. */
async function afterFault(t: Tap, w: World, ctx: AppContext = w.ctx) {
  for (const [name, write] of Object.entries(w.writes)) {
    let answer = await write()
    // The pool's connections may need a moment to notice (PostgreSQL).
    for (let i = 0; i < 20 && answer.status !== 200; i++) {
      await sleep(100)
      answer = await write()
    }
    t.equal(answer.status, 200, `${name}: 200 again`)
  }
  const writers = await ctx.notify.listWriters(w.space, 10)
  t.equal(
    writers.find((r) => r.did === w.writer.did)?.repoRev,
    w.state.acknowledged,
    'the writer set holds the last acknowledged write, no refused one',
  )
  const members = await ctx.db.prisma.spaceMember.findMany({ where: { space: w.space } })
  const refused = new Set(w.state.refusedMembers)
  t.same(
    members.filter((m) => refused.has(m.did)).map((m) => m.did),
    [],
    'no refused putMember left a member',
  )
  t.equal((await ctx.spaces.members.state(w.space)).count, members.length, 'member count agrees')
  t.ok(await memberDigestMatches(ctx, w.space), 'the member digest is the table’s')
  if (ctx.db.kind === 'sqlite') {
    const check =
      await ctx.db.prisma.$queryRawUnsafe<{ integrity_check: string }[]>('PRAGMA integrity_check')
    t.same(check, [{ integrity_check: 'ok' }], 'SQLite finds the database whole')
  }
}

t.test(
  'SQLite on a full disk: 503 for writes, reads served, whole once space is back (no restart)',
  sqliteOnly('tmpfs'),
  async (t) => {
    const { dataDir } = await processWorld(t, 'disk-full')
    const dir = tmpfs(t, 24)
    const w = await faultWorld(t, serveEnv(dataDir, `file:${join(dir, 'gatehouse.sqlite')}`))
    await beforeFault(t, w)
    const free = fill(dir)
    await underFault(t, w, 500)
    free()
    await afterFault(t, w)
  },
)

t.test(
  'SQLite on a filesystem gone read-only: 503 for writes, reads served, whole after fsck and a restart',
  sqliteOnly('ext4'),
  async (t) => {
    const { dataDir } = await processWorld(t, 'disk-ro')
    const base = mkdtempSync(join(tmpdir(), 'gatehouse-ext4-'))
    const image = join(base, 'fs.img')
    const dir = join(base, 'mnt')
    mkdirSync(dir)
    run('truncate', '-s', '32M', image)
    run('mkfs.ext4', '-q', '-m', '0', image)
    const mount = () => run('mount', '-o', 'loop,errors=remount-ro', image, dir)
    mount()
    t.teardown(() => {
      run('umount', '-l', dir)
      rmSync(base, { recursive: true, force: true })
    })
    // With `normal`, commits not yet written back when the filesystem stops taking writes are
    // lost, as in a power cut (docs/operating.md); `full` syncs each commit before answering.
    const env = serveEnv(dataDir, `file:${join(dir, 'gatehouse.sqlite')}`, {
      GATEHOUSE_SQLITE_SYNCHRONOUS: 'full',
    })
    const w = await faultWorld(t, env)
    await beforeFault(t, w)
    // An error the kernel takes as a sign of a failing disk: ext4 turns the filesystem read-only
    // under the open database, as it would on a real one.
    const dev = run('findmnt', '-no', 'SOURCE', dir).replace('/dev/', '')
    run('sh', '-c', `echo 1 > /sys/fs/ext4/${dev}/trigger_fs_error`)
    t.match(
      run('findmnt', '-no', 'OPTIONS', dir),
      /^ro,|emergency_ro/,
      'the filesystem is read-only',
    )
    await underFault(t, w, 1)

    // The operator's way back: stop, unmount, fsck, mount, start.
    await w.stop()
    await w.ctx.destroy()
    run('umount', dir)
    try {
      run('e2fsck', '-fy', image)
    } catch (err) {
      // Exit 1: errors corrected, as expected after the error the kernel recorded.
      t.equal((err as { status?: number }).status, 1, 'fsck corrected the recorded error')
    }
    mount()
    await w.restart()
    await afterFault(t, w, await sideContext(t, env))
  },
)

/** A PostgreSQL cluster of the test's own (it is altered), on `scripts/pg-cluster.sh`. */
async function ownCluster(t: TestLike): Promise<{ url: string; admin: pg.Client }> {
  const cluster = (...args: string[]) =>
    run('bash', join(PACKAGE_ROOT, 'scripts/pg-cluster.sh'), ...args)
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-pgdisk-'))
  const url = cluster('start', dir, String(await freePort()))
  t.teardown(() => {
    cluster('stop', dir)
    rmSync(dir, { recursive: true, force: true })
  })
  const admin = new pg.Client({ connectionString: url })
  // The cluster stops before this client ends.
  admin.on('error', () => {})
  await admin.connect()
  t.teardown(() => admin.end())
  return { url, admin }
}

const pgOnly = { skip: pgUrl ? false : 'PostgreSQL leg only (GATEHOUSE_TEST_DATABASE_URL)' }

t.test(
  'PostgreSQL made read-only: 503 for writes, reads served, whole once writable (no restart)',
  pgOnly,
  async (t) => {
    const { url, admin } = await ownCluster(t)
    process.env.GATEHOUSE_TEST_DATABASE_URL = url
    const { dataDir, db } = await processWorld(t, 'pg-ro')
    const w = await faultWorld(t, serveEnv(dataDir, db.url))
    await beforeFault(t, w)
    // As a failover onto a standby, or an operator protecting a nearly full disk, would.
    await admin.query('ALTER SYSTEM SET default_transaction_read_only = on')
    await admin.query('SELECT pg_reload_conf()')
    await sleep(200)
    await underFault(t, w, 1)
    await admin.query('SET default_transaction_read_only = off')
    await admin.query('ALTER SYSTEM RESET default_transaction_read_only')
    await admin.query('SELECT pg_reload_conf()')
    await sleep(200)
    await afterFault(t, w)
  },
)

t.test(
  'PostgreSQL with its tablespace full: 503 for writes, reads served, whole once space is back (no restart)',
  { skip: pgOnly.skip || cannotMount('tmpfs') },
  async (t) => {
    const { url, admin } = await ownCluster(t)
    const dir = tmpfs(t, 24)
    const space = join(dir, 'ts')
    mkdirSync(space)
    run('chown', 'postgres', space)
    // Gatehouse's tables go to the small tablespace; the WAL stays on the cluster's own disk.
    await admin.query(`CREATE TABLESPACE small LOCATION '${space}'`)
    await admin.query('ALTER DATABASE postgres SET default_tablespace = small')
    process.env.GATEHOUSE_TEST_DATABASE_URL = url
    const { dataDir, db } = await processWorld(t, 'pg-full')
    const w = await faultWorld(t, serveEnv(dataDir, db.url))
    await beforeFault(t, w)
    const free = fill(dir)
    await underFault(t, w, 500)
    free()
    await afterFault(t, w)
  },
)

import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { PACKAGE_ROOT } from '../../src/paths.js'

/**
 * A free TCP port on loopback (for processes that take a fixed port from their environment).
 *
 * Chosen below the kernel's ephemeral range (32768 and up on Linux): a port from listen(0) is
 * ephemeral, and between our check and the child's listen any outbound connection of a parallel
 * test may be given it (CI saw EADDRINUSE that way). Below the range only an explicit bind takes a
 * port, so a random one that is free now stays free.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000)
    if (await portFree(port)) return port
  }
  throw new Error('no free port below the ephemeral range after 50 tries')
}

/** Whether `port` on loopback can be listened on right now. */
export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer()
    srv.once('error', () => resolve(false))
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)))
  })
}

export interface RunningProcess {
  child: ChildProcess
  stdout: string[]
  stderr: string[]
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Resolves when a stdout line matches. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>
}

/** Runs the real `gatehouse` command (from source, through tsx) with exactly the given environment. */
export function runGatehouse(args: string[], env: Record<string, string>): RunningProcess {
  return runCommand(
    process.execPath,
    ['--import', 'tsx', join(PACKAGE_ROOT, 'src/bin.ts'), ...args],
    { cwd: PACKAGE_ROOT, env },
  )
}

/**
 * Runs a command with exactly the given environment (and PATH), collecting its output lines.
 * `detached` gives it a process group of its own, whose id is its pid: signal the group as a
 * terminal would, or check that nothing of it is left.
 */
export function runCommand(
  command: string,
  args: string[],
  opts: { cwd: string; env: Record<string, string>; detached?: boolean },
): RunningProcess {
  const child = spawn(command, args, {
    cwd: opts.cwd,
    env: { PATH: process.env.PATH ?? '', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: opts.detached ?? false,
  })
  const stdout: string[] = []
  const stderr: string[] = []
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = []
  const collect = (sink: string[]) => (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) {
      sink.push(line)
      for (const w of [...waiters]) {
        if (w.re.test(line)) {
          waiters.splice(waiters.indexOf(w), 1)
          w.resolve(line)
        }
      }
    }
  }
  child.stdout!.on('data', collect(stdout))
  child.stderr!.on('data', collect(stderr))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  )
  return {
    child,
    stdout,
    stderr,
    exited,
    waitFor(re, timeoutMs = 20_000) {
      const seen = stdout.find((l) => re.test(l))
      if (seen) return Promise.resolve(seen)
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`timed out waiting for ${re}; stderr: ${stderr.join('\n')}`)),
          timeoutMs,
        )
        waiters.push({
          re,
          resolve: (l) => {
            clearTimeout(timer)
            resolve(l)
          },
        })
        void exited.then(() =>
          reject(new Error(`exited before ${re}; stderr: ${stderr.join('\n')}`)),
        )
      })
    },
  }
}

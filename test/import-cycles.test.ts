/**
 * No import cycle in src/, type-only imports included: a cycle ties layers together (auth → xrpc →
 * context → auth was one) and makes module initialisation order matter.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import t from 'tap'
import { PACKAGE_ROOT } from '../src/paths.js'

const SRC = join(PACKAGE_ROOT, 'src')

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? sourceFiles(join(dir, e.name))
      : e.name.endsWith('.ts')
        ? [join(dir, e.name)]
        : [],
  )
}

/** The relative modules a file imports or re-exports: `import`, `import type`, `export … from`, `import('…')`. */
function relativeImports(text: string): string[] {
  const found: string[] = []
  const patterns = [
    /^\s*(?:import|export)\b[^;'"]*?\bfrom\s*['"](\.{1,2}\/[^'"]+)['"]/gm,
    /^\s*import\s*['"](\.{1,2}\/[^'"]+)['"]/gm,
    /\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g,
  ]
  for (const re of patterns) for (const m of text.matchAll(re)) found.push(m[1]!)
  return found
}

/** Every cycle's files (one per strongly connected component of more than one file, or a self-import). */
function findCycles(graph: Map<string, string[]>): string[][] {
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const cycles: string[][] = []
  let next = 0
  const visit = (v: string) => {
    index.set(v, next)
    low.set(v, next++)
    stack.push(v)
    onStack.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!))
    }
    if (low.get(v) !== index.get(v)) return
    const component: string[] = []
    let w: string
    do {
      w = stack.pop()!
      onStack.delete(w)
      component.push(w)
    } while (w !== v)
    if (component.length > 1 || graph.get(v)?.includes(v)) cycles.push(component.sort())
  }
  for (const v of graph.keys()) if (!index.has(v)) visit(v)
  return cycles
}

t.test('the import scanner sees every kind of relative import', async (t) => {
  const text = [
    "import { a } from './a.js'",
    "import type { B } from '../b.js'",
    'import {',
    '  c,',
    '  type D,',
    "} from './c.js'",
    "export { e } from './e.js'",
    "export type * from './f.js'",
    "import './g.js'",
    "const h = await import('./h.js')",
    "import { z } from 'zod'",
  ].join('\n')
  t.same(relativeImports(text).sort(), [
    '../b.js',
    './a.js',
    './c.js',
    './e.js',
    './f.js',
    './g.js',
    './h.js',
  ])
  t.same(
    findCycles(
      new Map([
        ['a', ['b']],
        ['b', ['c']],
        ['c', ['a']],
        ['d', ['a']],
      ]),
    ),
    [['a', 'b', 'c']],
    'a three-file circle is found, and a file that only enters it is not in it',
  )
  t.same(findCycles(new Map([['a', ['b']]])), [], 'a line is no circle')
})

t.test('src/ has no import cycle', async (t) => {
  const graph = new Map<string, string[]>()
  for (const file of sourceFiles(SRC)) {
    const deps = relativeImports(readFileSync(file, 'utf8')).map((spec) =>
      relative(PACKAGE_ROOT, resolve(dirname(file), spec.replace(/\.js$/, '.ts'))),
    )
    graph.set(relative(PACKAGE_ROOT, file), deps)
  }
  t.ok(graph.size > 50, `read ${graph.size} files`)
  const cycles = findCycles(graph)
  t.same(
    cycles.map((c) => c.join(' ↔ ')),
    [],
    cycles.length ? `import cycles: ${cycles.map((c) => c.join(' ↔ ')).join('; ')}` : 'none',
  )
})

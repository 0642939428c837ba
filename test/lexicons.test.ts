/**
 * Drift guard between lexicons/ (what peers read) and the zod schemas in src/lexicon/ (what the
 * server enforces): every served route has a lexicon; every method spec agrees with its lexicon on
 * type, parameter/input/output field names, required fields and declared error names.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { pathToFileURL } from 'node:url'
import t from 'tap'
import type { z } from 'zod'
import { PACKAGE_ROOT } from '../src/paths.js'
import type { MethodSpec } from '../src/lexicon/method.js'
import { TestArbiter } from './_helpers/arbiter.js'

interface LexObject {
  type: string
  required?: string[]
  properties?: Record<string, unknown>
}
interface LexMain {
  type: 'query' | 'procedure'
  parameters?: LexObject
  input?: { encoding: string; schema: LexObject }
  output?: { encoding: string; schema: LexObject }
  errors?: { name: string }[]
}
interface LexDoc {
  lexicon: number
  id: string
  defs: Record<string, unknown> & { main?: LexMain }
}

const walk = (dir: string, ext: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? walk(join(dir, e.name), ext)
      : e.name.endsWith(ext)
        ? [join(dir, e.name)]
        : [],
  )

const lexicons = new Map<string, LexDoc>()
for (const file of walk(join(PACKAGE_ROOT, 'lexicons'), '.json')) {
  const doc = JSON.parse(readFileSync(file, 'utf8')) as LexDoc
  lexicons.set(doc.id, doc)
  t.equal(
    relative(join(PACKAGE_ROOT, 'lexicons'), file),
    `${doc.id.split('.').join('/')}.json`,
    `${doc.id} lives at the path of its NSID`,
  )
  t.equal(doc.lexicon, 1)
}

async function methodSpecs(): Promise<MethodSpec[]> {
  const specs: MethodSpec[] = []
  for (const file of walk(join(PACKAGE_ROOT, 'src/lexicon'), '.ts')) {
    const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>
    for (const value of Object.values(mod)) {
      const v = value as Partial<MethodSpec>
      if (v && typeof v.nsid === 'string' && (v.type === 'query' || v.type === 'procedure')) {
        specs.push(v as MethodSpec)
      }
    }
  }
  return specs
}

function zodFields(schema: z.ZodType | undefined): { names: string[]; required: string[] } {
  if (!schema) return { names: [], required: [] }
  const shape = (schema as unknown as { shape?: Record<string, z.ZodType> }).shape
  if (!shape) throw new Error('method schemas must be zod objects')
  const names = Object.keys(shape).sort()
  const required = names.filter((n) => !shape[n]!.safeParse(undefined).success).sort()
  return { names, required }
}

function lexFields(obj: LexObject | undefined): { names: string[]; required: string[] } {
  return {
    names: Object.keys(obj?.properties ?? {}).sort(),
    required: [...(obj?.required ?? [])].sort(),
  }
}

t.test('every method spec agrees with its lexicon', async (t) => {
  const specs = await methodSpecs()
  t.ok(specs.length > 0, 'found method specs')
  for (const spec of specs) {
    const main = lexicons.get(spec.nsid)?.defs.main
    if (!main) {
      t.fail(`${spec.nsid} has no lexicon in lexicons/`)
      continue
    }
    t.equal(spec.type, main.type, `${spec.nsid}: type`)
    t.same(zodFields(spec.params), lexFields(main.parameters), `${spec.nsid}: parameters`)
    t.same(zodFields(spec.input), lexFields(main.input?.schema), `${spec.nsid}: input`)
    if (spec.outputEncoding === 'application/x-ndjson') {
      t.same(
        main.output,
        { encoding: 'application/x-ndjson' },
        `${spec.nsid}: JSON-lines output, no schema`,
      )
    } else {
      t.same(zodFields(spec.output), lexFields(main.output?.schema), `${spec.nsid}: output`)
    }
    if (spec.inputEncoding === 'application/x-ndjson') {
      t.same(
        main.input,
        { encoding: 'application/x-ndjson' },
        `${spec.nsid}: JSON-lines input, no schema`,
      )
    }
    t.same(
      [...spec.errors].sort(),
      (main.errors ?? []).map((e) => e.name).sort(),
      `${spec.nsid}: declared errors`,
    )
  }
})

t.test('every served XRPC route has a lexicon', async (t) => {
  const a = await TestArbiter.create(t)
  const served = a.app.xrpc.list()
  t.ok(served.length > 0)
  for (const m of served) t.ok(lexicons.get(m.nsid)?.defs.main, `${m.nsid} has a lexicon`)
})

t.test('the drift guard notices a disagreement', async (t) => {
  // A spec that differs from its lexicon in one required field must not pass the comparison above.
  const specs = await methodSpecs()
  const spec = specs.find((s) => s.nsid === 'dev.gatehouse.server.describeServer')!
  const main = lexicons.get(spec.nsid)!.defs.main!
  const broken = { ...main.output!.schema, required: main.output!.schema.required!.slice(1) }
  t.notSame(zodFields(spec.output), lexFields(broken))
})

/**
 * Writes docs/configuration.md and .env.example from the settings in src/config.ts: names, defaults
 * and values from SCHEMA, descriptions from the one-line comment above each setting. Run it after
 * adding, removing or changing a setting: `npx tsx scripts/config-docs.ts`. test/env-example.test.ts
 * checks the committed files equal what this writes.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import * as prettier from 'prettier'
import { SCHEMA, SETTINGS, type Setting } from '../src/config.js'
import { PACKAGE_ROOT } from '../src/paths.js'

export const DOCS_FILE = join(PACKAGE_ROOT, 'docs/configuration.md')
export const ENV_EXAMPLE_FILE = join(PACKAGE_ROOT, '.env.example')

/** Headings of the sections of SCHEMA (a new section without one shows under its key). */
const SECTIONS: Record<string, string> = {
  mode: 'Run mode',
  service: 'Service',
  db: 'Database',
  log: 'Logging',
  identity: 'DID resolution',
  net: 'Outbound requests',
  auth: 'Authentication',
  policy: 'Space policies and managing apps',
  retention: 'Storage retention (the janitor)',
  members: 'Member lists',
  authorities: 'Authorities',
  managers: "Managers' login sessions",
  notify: 'Write notifications and the relay',
  secrets: 'Keys (secrets)',
}

const UNITS: [RegExp, string][] = [
  [/_MS$/, 'ms'],
  [/_SEC$/, 'seconds'],
  [/_DAYS$/, 'days'],
  [/_BYTES$/, 'bytes'],
]

/** Each setting's description: the `/** … *\/` line just above its declaration in src/config.ts. */
function descriptions(): Map<string, string> {
  const source = readFileSync(join(PACKAGE_ROOT, 'src/config.ts'), 'utf8')
  const found = new Map<string, string>()
  for (const m of source.matchAll(/\/\*\* (.+) \*\/\n\s*\w+: \w+\(\s*'(GATEHOUSE_\w+)'/g)) {
    found.set(m[2]!, m[1]!)
  }
  for (const s of SETTINGS) {
    if (!found.has(s.env))
      throw new Error(`${s.env} has no one-line /** comment */ in src/config.ts`)
  }
  return found
}

const isSetting = (node: object): node is Setting => 'env' in node
const unit = (s: Setting) => UNITS.find(([re]) => re.test(s.env))?.[1] ?? ''
const values = (s: Setting) =>
  (s.schema.meta()?.values as string | undefined) ??
  (s.schema as { options?: string[] }).options?.join(', ') ??
  ''
/** The default as markdown: a value in code, a description with its `<placeholders>` in code. */
const shownDefault = (s: Setting) =>
  s.fallback !== 'default'
    ? s.default.replace(/\S*<[^>]+>\S*/g, (m) => `\`${m}\``)
    : s.default === ''
      ? 'none'
      : `\`${s.default}\``

/** The settings of SCHEMA grouped by section, in declaration order. */
function sections(): [string, Setting[]][] {
  return Object.entries(SCHEMA).map(([key, node]) => [
    SECTIONS[key] ?? key,
    isSetting(node) ? [node] : (Object.values(node) as Setting[]),
  ])
}

export async function renderDocs(): Promise<string> {
  const doc = descriptions()
  const out = [
    '# Configuration',
    '',
    '<!-- Generated from src/config.ts by `npx tsx scripts/config-docs.ts`: edit the settings there. -->',
    '',
    'All configuration is environment variables prefixed `GATEHOUSE_`; every one is optional and the',
    'defaults need no setup ([.env.example](../.env.example) lists them too). Boot stops with one line',
    'naming the variable when a value is bad, and when a `GATEHOUSE_*` variable is unknown (a typo',
    'should not silently fall back to a default):',
    '',
    '```',
    '$ GATEHOUSE_PORT=abc npm start',
    'gatehouse: invalid configuration: GATEHOUSE_PORT: must be an integer between 1 and 65535 (got "abc")',
    '```',
    '',
    '`GATEHOUSE_ENV=production` also refuses to start with a public URL that is not https, with',
    '`GATEHOUSE_ALLOW_PRIVATE_NETWORK`, and without `GATEHOUSE_KEK` (a KEK kept in',
    '`<data dir>/kek.key`, beside the keys it protects) unless `GATEHOUSE_ALLOW_KEK_IN_DATA_DIR=true`.',
  ]
  for (const [title, settings] of sections()) {
    out.push('', `## ${title}`, '', '| Variable | Default | Values | Unit | Description |')
    out.push('| --- | --- | --- | --- | --- |')
    for (const s of settings) {
      const cells = [`\`${s.env}\``, shownDefault(s), values(s), unit(s), doc.get(s.env)!]
      out.push(`| ${cells.map((c) => c.replaceAll('|', '\\|')).join(' | ')} |`)
    }
  }
  const options = await prettier.resolveConfig(DOCS_FILE)
  return prettier.format(`${out.join('\n')}\n`, { ...options, filepath: DOCS_FILE })
}

export function renderEnvExample(): string {
  const doc = descriptions()
  const out = [
    '# Gatehouse configuration: every variable with its default (docs/configuration.md describes them).',
    '# Generated from src/config.ts by `npx tsx scripts/config-docs.ts`: edit the settings there.',
    '# bin.ts reads these from the environment; it does not load this file: export them, or use your',
    "# process manager's env file. Unknown GATEHOUSE_* variables stop the boot, so typos are caught.",
  ]
  for (const [title, settings] of sections()) {
    out.push('', `# --- ${title}`)
    for (const s of settings) {
      const described = unit(s) ? `${doc.get(s.env)!} In ${unit(s)}.` : doc.get(s.env)!
      if (s.fallback === 'default') out.push(`# ${described}`, `${s.env}=${s.default}`)
      else out.push(`# ${described} Default: ${s.default}.`, `# ${s.env}=`)
    }
  }
  return `${out.join('\n')}\n`
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  writeFileSync(DOCS_FILE, await renderDocs())
  writeFileSync(ENV_EXAMPLE_FILE, renderEnvExample())
  process.stdout.write(`wrote ${DOCS_FILE} and ${ENV_EXAMPLE_FILE}\n`)
}

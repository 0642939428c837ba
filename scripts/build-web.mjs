#!/usr/bin/env node
// Builds the dashboard (web/) into ONE script and ONE stylesheet named by their content's hash, plus
// manifest.json naming them, in dist/web/ (or the folder given as the first argument). The server
// serves exactly these files; the policy presets (policies/*.json) are built in as the dashboard's
// choices, so it never has to ask for them.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const out = resolve(process.argv[2] ?? join(root, 'dist', 'web'))

const presets = readdirSync(join(root, 'policies'))
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => {
    const { name, description, parameters } = JSON.parse(
      readFileSync(join(root, 'policies', f), 'utf8'),
    )
    return { name, description, parameters: parameters ?? [] }
  })

rmSync(out, { recursive: true, force: true })
mkdirSync(out, { recursive: true })
const result = await build({
  entryPoints: { app: join(root, 'web', 'src', 'main.ts') },
  bundle: true,
  minify: true,
  format: 'esm',
  target: 'es2022',
  entryNames: '[name].[hash]',
  outdir: out,
  metafile: true,
  legalComments: 'none',
  define: { PRESETS: JSON.stringify(presets) },
  logLevel: 'warning',
})
const files = Object.keys(result.metafile.outputs).map((p) => basename(p))
const manifest = {
  js: files.find((f) => f.endsWith('.js')),
  css: files.find((f) => f.endsWith('.css')),
}
if (!manifest.js || !manifest.css)
  throw new Error(`dashboard build: expected a .js and a .css, got ${files}`)
writeFileSync(join(out, 'manifest.json'), `${JSON.stringify(manifest)}\n`)

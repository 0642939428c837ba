// tap coverage map: every test is measured against the files under src/ (not the generated Prisma
// clients or the helpers), so the summary speaks of our own code.
import { readdirSync } from 'node:fs'
import { join } from 'node:path'

const walk = (dir) =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  )
const sources = walk('src')

export default () => sources

import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { z } from 'zod'
import { CREDENTIAL_MAX_TTL_SEC } from '../crypto/space-token.js'
import { PACKAGE_ROOT } from '../paths.js'
import { appAccessFromLex, userPolicyFromLex } from './codec.js'
import type { SpacePolicy } from './types.js'

/** Presets under policies/: lexicon-form policies with `"$name"` parameters, validated at boot. */

export const PRESETS_DIR = join(PACKAGE_ROOT, 'policies')

const PARAMETERS = {
  managingApp: 'did:web:app.example#managing_app',
  clients: ['https://app.example/client-metadata.json'],
}
type ParamName = keyof typeof PARAMETERS
export type PresetParams = Partial<{ managingApp: string; clients: string[] }>

const presetSchema = z
  .object({
    name: z.string().regex(/^[a-z][a-z0-9-]{0,62}$/),
    description: z.string().min(1),
    parameters: z.array(z.enum(['managingApp', 'clients'])).default([]),
    readPolicy: z.record(z.string(), z.unknown()),
    writePolicy: z.record(z.string(), z.unknown()),
    appAccess: z.record(z.string(), z.unknown()),
    credentialTtlSec: z.number().int().min(60).max(CREDENTIAL_MAX_TTL_SEC).optional(),
    dpopCredentialTtlSec: z.number().int().min(60).max(CREDENTIAL_MAX_TTL_SEC).optional(),
  })
  .strict()

export type PresetDefinition = z.infer<typeof presetSchema>

export class PresetError extends Error {
  override name = 'PresetError'
}

function substitute(value: unknown, params: Record<string, unknown>, allowed: string[]): unknown {
  if (typeof value === 'string' && value.startsWith('$')) {
    const name = value.slice(1)
    if (!allowed.includes(name)) throw new PresetError(`parameter "${name}" is not declared`)
    if (params[name] === undefined) throw new PresetError(`parameter "${name}" is required`)
    return params[name]
  }
  if (Array.isArray(value)) return value.map((v) => substitute(v, params, allowed))
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, substitute(v, params, allowed)]),
    )
  }
  return value
}

export class PolicyRegistry {
  private constructor(private readonly presets: Map<string, PresetDefinition>) {}

  /** Loads and validates every preset in `dir`. Throws PresetError naming the file. */
  static load(dir: string = PRESETS_DIR): PolicyRegistry {
    const presets = new Map<string, PresetDefinition>()
    for (const file of readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .sort()) {
      let def: PresetDefinition
      try {
        def = presetSchema.parse(JSON.parse(readFileSync(join(dir, file), 'utf8')))
      } catch (err) {
        throw new PresetError(
          `policies/${file}: ${err instanceof z.ZodError ? err.issues[0]?.message : (err as Error).message}`,
        )
      }
      if (`${def.name}.json` !== file)
        throw new PresetError(`policies/${file}: name must match the file name`)
      const registry = new PolicyRegistry(new Map([[def.name, def]]))
      try {
        registry.resolve(
          def.name,
          Object.fromEntries(def.parameters.map((p) => [p, PARAMETERS[p as ParamName]])),
        )
      } catch (err) {
        throw new PresetError(`policies/${file}: ${(err as Error).message}`)
      }
      presets.set(def.name, def)
    }
    return new PolicyRegistry(presets)
  }

  names(): string[] {
    return [...this.presets.keys()]
  }

  get(name: string): PresetDefinition | undefined {
    return this.presets.get(name)
  }

  /** The preset's policy with its parameters filled in. Throws PresetError or PolicyCodecError. */
  resolve(
    name: string,
    params: PresetParams = {},
  ): SpacePolicy & { credentialTtlSec?: number; dpopCredentialTtlSec?: number } {
    const def = this.presets.get(name)
    if (!def) throw new PresetError(`no preset named "${name}"`)
    const fill = (v: unknown) => substitute(v, params, def.parameters)
    return {
      readPolicy: userPolicyFromLex(fill(def.readPolicy)),
      writePolicy: userPolicyFromLex(fill(def.writePolicy)),
      appAccess: appAccessFromLex(fill(def.appAccess)),
      ...(def.credentialTtlSec ? { credentialTtlSec: def.credentialTtlSec } : {}),
      ...(def.dpopCredentialTtlSec ? { dpopCredentialTtlSec: def.dpopCredentialTtlSec } : {}),
    }
  }
}

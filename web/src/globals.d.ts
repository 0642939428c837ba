/** The policy presets of policies/, built in by scripts/build-web.mjs. */
declare const PRESETS: {
  name: string
  description: string
  parameters: ('managingApp' | 'clients')[]
}[]

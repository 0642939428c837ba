import { createReadStream, readFileSync } from 'node:fs'
import { auditLine, OPERATOR } from '../audit/audit-log.js'
import type { AppContext } from '../context.js'
import { EXPORT_COMMANDS } from './authority-export.js'
import { CliUsageError, OPTIONS, type Command, type Options } from './command.js'
import { isDid, parseSpaceRef } from '../lexicon/formats.js'
import { MANAGER_ROLES, type ManagerRole } from '../authorities/managers.js'
import type { Flags } from '../members/member-list.js'
import { importEntries } from '../lexicon/dev/gatehouse/simplespace/bulk.js'
import { getHostedSpace } from '../spaces/hosted.js'
import { spaceView } from '../spaces/view.js'
import { nextTid } from '../spaces/tid.js'
import { readJsonLines } from '../xrpc/ndjson.js'

const KEY_PURPOSES = ['atproto', 'atproto_space'] as const

export { CliUsageError, OPTIONS, type Command, type Options }

/** `--NAME on|off`: undefined when not given. */
export function onOff(o: Options, name: 'pds-service' | 'read' | 'write'): boolean | undefined {
  const value = o[name]
  if (value === undefined) return undefined
  if (value === 'on' || value === 'off') return value === 'on'
  throw new CliUsageError(`--${name} is on or off`)
}

/** `value` if it is one of `allowed`, else a usage error naming `--name`. */
export function oneOf<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) throw new CliUsageError(`--${name} is ${allowed.join(' or ')}`)
  return value as T
}

function did(value: string): string {
  if (!isDid(value)) throw new CliUsageError(`not a DID: ${value}`)
  return value
}

/** The policy of `--preset`, its parameters from `--managing-app` and `--client`. */
function preset(ctx: AppContext, o: Options) {
  if (!o.preset) throw new CliUsageError(`--preset is one of: ${ctx.presets.names().join(', ')}`)
  return ctx.presets.resolve(o.preset, { managingApp: o['managing-app'], clients: o.client })
}

/** `--expires ISO` as a date, when given. */
function expiresOf(o: Options): Date | undefined {
  if (o.expires === undefined) return undefined
  const at = new Date(o.expires)
  if (Number.isNaN(at.getTime())) throw new CliUsageError('--expires is an ISO 8601 date-time')
  return at
}

/** `--max-uses N|unlimited` (default 1). */
function maxUsesOf(o: Options): number | null {
  const value = o['max-uses'] ?? '1'
  if (value === 'unlimited') return null
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1 || n > 100_000)
    throw new CliUsageError('--max-uses is 1 to 100000, or unlimited')
  return n
}

const JOIN_STATUSES = ['pending', 'approved', 'denied'] as const

async function putMember(ctx: AppContext, [space, member]: string[], flags: Flags) {
  await ctx.manager.putMember(await getHostedSpace(ctx, space!), did(member!), flags, OPERATOR)
  return { did: member, ...flags }
}

/** A `.json` file holds one array; anything else (`-`: stdin) is JSON lines, read as they stream. */
async function* memberLines(file: string) {
  if (file.endsWith('.json')) {
    const all: unknown = JSON.parse(readFileSync(file, 'utf8'))
    if (!Array.isArray(all)) throw new CliUsageError(`${file} is not a JSON array`)
    return yield* all.map((value: unknown, i) => ({ line: i + 1, value }))
  }
  const stream = file === '-' ? process.stdin : createReadStream(file)
  yield* readJsonLines(stream, { maxLineBytes: 4096, maxLines: 10_000_000 })
}

/**
 * Operator commands on the database, through the XRPC handlers' services and rules, as root manager
 * of every authority. Never prints a private key.
 */
export const COMMANDS: Record<string, Record<string, Command>> = {
  authority: {
    create: {
      usage:
        '--plc|--web DID [--handle H] [--owner-rotation-key DIDKEY] [--owner DID] [--separate-space-key] [--pds-service on|off]',
      run(ctx, _args, o) {
        if (!!o.plc === !!o.web)
          throw new CliUsageError('authority create needs --plc or --web DID')
        const common = {
          handle: o.handle,
          owner: o.owner,
          separateSpaceKey: o['separate-space-key'],
          pdsService: onOff(o, 'pds-service'),
        }
        return o.plc
          ? ctx.lifecycle.createPlc(
              { ...common, ownerRotationKey: o['owner-rotation-key'] },
              OPERATOR,
            )
          : ctx.lifecycle.createWeb({ ...common, did: o.web! }, OPERATOR)
      },
    },
    adopt: {
      usage: 'DID [--signing atproto|atproto_space] [--owner DID] [--pds-service on|off]',
      run: (ctx, [did], o) =>
        ctx.lifecycle.adopt(
          {
            did: did!,
            signing: oneOf('signing', o.signing ?? 'atproto', KEY_PURPOSES),
            owner: o.owner,
            pdsService: onOff(o, 'pds-service'),
          },
          OPERATOR,
        ),
    },
    set: {
      usage: 'DID --pds-service on|off',
      run(ctx, [did], o) {
        const on = onOff(o, 'pds-service')
        if (on === undefined) throw new CliUsageError('authority set needs --pds-service on|off')
        return ctx.lifecycle.setPdsService(did!, on, OPERATOR)
      },
    },
    activate: { usage: 'DID', run: (ctx, [did]) => ctx.lifecycle.activate(did!, OPERATOR) },
    deactivate: { usage: 'DID', run: (ctx, [did]) => ctx.lifecycle.deactivate(did!, OPERATOR) },
    show: { usage: 'DID', run: (ctx, [did]) => ctx.lifecycle.describe(did!) },
    list: { usage: '', run: (ctx) => ctx.authorities.list() },
    'rotate-key': {
      usage: 'DID [--purpose atproto|atproto_space]',
      run: (ctx, [did], o) =>
        ctx.lifecycle.rotateSigningKey(
          did!,
          oneOf('purpose', o.purpose ?? 'atproto', KEY_PURPOSES),
          OPERATOR,
        ),
    },
    'rotate-rotation-keys': {
      usage: 'DID [--owner-rotation-key DIDKEY | --remove-owner-rotation-key]',
      run: (ctx, [did], o) =>
        ctx.lifecycle.rotateRotationKeys(
          did!,
          { ownerRotationKey: o['remove-owner-rotation-key'] ? null : o['owner-rotation-key'] },
          OPERATOR,
        ),
    },
    transfer: {
      usage: 'DID [--rotation-key DIDKEY ...] [--endpoint URL]',
      run: (ctx, [did], o) =>
        ctx.lifecycle.transfer(
          did!,
          {
            rotationKeys: o['rotation-key'],
            services: o.endpoint
              ? { atproto_space_host: { type: 'AtprotoSpaceHost', endpoint: o.endpoint } }
              : undefined,
          },
          OPERATOR,
        ),
    },
    ...EXPORT_COMMANDS,
  },
  space: {
    create: {
      usage: 'AUTHORITY TYPE --preset NAME [--skey KEY] [--managing-app ID] [--client ID ...]',
      async run(ctx, [authority, spaceType], o) {
        if (!(await ctx.authorities.isActive(authority!)))
          throw new CliUsageError(`${authority} is not an active authority here`)
        const skey = o.skey ?? nextTid(ctx.clock.nowMs())
        if (!parseSpaceRef(`at://${authority}/space/${spaceType}/${skey}`))
          throw new CliUsageError('TYPE must be an NSID and --skey a record key')
        const input = { authority: authority!, spaceType: spaceType!, skey, ...preset(ctx, o) }
        return spaceView(ctx, await ctx.spaces.create(input, OPERATOR))
      },
    },
    list: { usage: '[AUTHORITY]', run: (ctx, [authority]) => ctx.spaces.list(authority) },
    show: {
      usage: 'SPACE',
      run: async (ctx, [space]) => spaceView(ctx, await getHostedSpace(ctx, space!)),
    },
    update: {
      usage: 'SPACE --preset NAME [--managing-app ID] [--client ID ...]',
      async run(ctx, [space], o) {
        await getHostedSpace(ctx, space!)
        const { readPolicy, writePolicy, appAccess } = preset(ctx, o)
        const change = { readPolicy, writePolicy, appAccess }
        return spaceView(ctx, await ctx.manager.updatePolicy(space!, change, OPERATOR))
      },
    },
    delete: {
      usage: 'SPACE',
      async run(ctx, [space]) {
        const deleted = await ctx.manager.deleteSpace(space!, OPERATOR)
        if (deleted) await ctx.notify.spaceDeleted(space!)
        return { uri: space, deleted }
      },
    },
  },
  member: {
    add: {
      usage: 'SPACE DID [--read on|off] [--write on|off]',
      run: (ctx, args, o) =>
        putMember(ctx, args, { read: onOff(o, 'read') ?? true, write: onOff(o, 'write') ?? true }),
    },
    update: {
      usage: 'SPACE DID [--read on|off] [--write on|off]',
      run: async (ctx, args, o) =>
        putMember(ctx, args, {
          read: onOff(o, 'read') ?? (await ctx.spaces.members.isMember(args[0]!, args[1]!, 'read')),
          write:
            onOff(o, 'write') ?? (await ctx.spaces.members.isMember(args[0]!, args[1]!, 'write')),
        }),
    },
    remove: {
      usage: 'SPACE DID',
      async run(ctx, [space, member]) {
        await ctx.manager.removeMember(await getHostedSpace(ctx, space!), did(member!), OPERATOR)
        return { did: member, removed: true }
      },
    },
    import: {
      usage: 'SPACE [FILE|-]',
      async run(ctx, [space, file]) {
        const config = await getHostedSpace(ctx, space!)
        const lines = importEntries(memberLines(file ?? '-'))
        return ctx.manager.importMembers(config, lines, OPERATOR)
      },
    },
    export: {
      usage: 'SPACE',
      async run(ctx, [space], _o, out) {
        await getHostedSpace(ctx, space!)
        for await (const m of ctx.spaces.members.iterate(space!)) out(JSON.stringify(m))
      },
    },
  },
  manager: {
    grant: {
      usage: `AUTHORITY DID --role ${MANAGER_ROLES.join('|')}`,
      async run(ctx, [authority, member], o) {
        const role: ManagerRole = oneOf('role', o.role ?? '', MANAGER_ROLES)
        if (!(await ctx.authorities.status(authority!)))
          throw new CliUsageError(`AuthorityNotFound: ${authority} is not an authority here`)
        await ctx.managers.change(authority!, did(member!), role, 'operator', OPERATOR)
        return { authority, did: member, role }
      },
    },
    list: { usage: 'AUTHORITY', run: (ctx, [authority]) => ctx.managers.list(authority!) },
    revoke: {
      usage: 'AUTHORITY DID',
      async run(ctx, [authority, member]) {
        await ctx.managers.change(authority!, member!, undefined, 'operator', OPERATOR)
        return { authority, did: member, revoked: true }
      },
    },
  },
  invite: {
    create: {
      usage: 'SPACE [--write on|off] [--max-uses N|unlimited] [--expires ISO]',
      async run(ctx, [space], o) {
        const { code, view } = await ctx.admission.createInvite(
          await getHostedSpace(ctx, space!),
          {
            write: onOff(o, 'write') ?? false,
            maxUses: maxUsesOf(o),
            expiresAt: expiresOf(o),
          },
          OPERATOR,
        )
        return { ...view, code, link: `${ctx.cfg.service.publicUrl}/join/${code}` }
      },
    },
    list: {
      usage: 'SPACE',
      run: async (ctx, [space]) =>
        ctx.admission.listInvites((await getHostedSpace(ctx, space!)).uri, 1000),
    },
    revoke: {
      usage: 'SPACE ID',
      async run(ctx, [space, id]) {
        if (
          !(await ctx.admission.revokeInvite(
            (await getHostedSpace(ctx, space!)).uri,
            id!,
            OPERATOR,
          ))
        )
          throw new CliUsageError(`InviteNotFound: no invite ${id} in ${space}`)
        return { id, revoked: true }
      },
    },
  },
  'join-request': {
    list: {
      usage: 'SPACE [--status pending|approved|denied]',
      async run(ctx, [space], o) {
        const status = o.status === undefined ? undefined : oneOf('status', o.status, JOIN_STATUSES)
        const { uri } = await getHostedSpace(ctx, space!)
        return ctx.admission.listRequests(uri, { status, limit: 1000 })
      },
    },
    approve: {
      usage: 'SPACE ID [--read on|off] [--write on|off]',
      run: async (ctx, [space, id], o) =>
        ctx.admission.approve(
          await getHostedSpace(ctx, space!),
          id!,
          { read: onOff(o, 'read') ?? true, write: onOff(o, 'write') ?? false },
          OPERATOR,
        ),
    },
    deny: {
      usage: 'SPACE ID [--reason TEXT]',
      run: async (ctx, [space, id], o) =>
        ctx.admission.deny(
          (await getHostedSpace(ctx, space!)).uri,
          id!,
          o.reason ?? null,
          OPERATOR,
        ),
    },
    open: {
      usage: 'SPACE',
      run: (ctx, [space]) => setJoinRequests(ctx, space!, true),
    },
    close: {
      usage: 'SPACE',
      run: (ctx, [space]) => setJoinRequests(ctx, space!, false),
    },
  },
  ban: {
    put: {
      usage: 'SPACE DID [--reason TEXT] [--expires ISO]',
      run: async (ctx, [space, member], o) =>
        ctx.admission.ban(
          await getHostedSpace(ctx, space!),
          did(member!),
          {
            reason: o.reason ?? null,
            expiresAt: expiresOf(o) ?? null,
          },
          OPERATOR,
        ),
    },
    list: {
      usage: 'SPACE',
      run: async (ctx, [space]) =>
        ctx.admission.listBans((await getHostedSpace(ctx, space!)).uri, 1000),
    },
    lift: {
      usage: 'SPACE DID',
      async run(ctx, [space, member]) {
        if (!(await ctx.admission.lift((await getHostedSpace(ctx, space!)).uri, member!, OPERATOR)))
          throw new CliUsageError(`${member} is not banned from ${space}`)
        return { did: member, lifted: true }
      },
    },
  },
  token: {
    create: {
      usage: `AUTHORITY --manager DID --name NAME --role ${MANAGER_ROLES.join('|')} [--space URI] [--expires ISO]`,
      async run(ctx, [authority], o) {
        const manager = did(o.manager ?? '')
        const creatorRole = await ctx.managers.roleOf(authority!, manager)
        if (!creatorRole) throw new CliUsageError(`${manager} does not manage ${authority}`)
        const expiresAt = expiresOf(o)
        if (o.space && parseSpaceRef(o.space)?.authority !== authority)
          throw new CliUsageError(`--space must be a space URI of ${authority}`)
        if (!o.name) throw new CliUsageError('--name is required')
        const { token, view } = await ctx.tokens.create(
          {
            authority: authority!,
            createdBy: manager,
            creatorRole,
            name: o.name,
            role: oneOf('role', o.role ?? '', MANAGER_ROLES),
            space: o.space,
            expiresAt,
          },
          OPERATOR,
        )
        return { ...view, token }
      },
    },
    list: { usage: 'AUTHORITY', run: (ctx, [authority]) => ctx.tokens.list(authority!, 1000) },
    revoke: {
      usage: 'AUTHORITY ID',
      async run(ctx, [authority, id]) {
        if (!(await ctx.tokens.revoke(authority!, id!, OPERATOR)))
          throw new CliUsageError(`no token ${id} on ${authority}`)
        return { id, revoked: true }
      },
    },
  },
  audit: {
    verify: { usage: 'AUTHORITY', run: (ctx, [authority]) => ctx.audit.verify(authority!) },
    list: {
      usage:
        'AUTHORITY [--space URI] [--actor DID] [--action A] [--since ISO] [--until ISO] [--limit N]',
      run: (ctx, [authority], o) =>
        ctx.audit.query({
          authority: authority!,
          space: o.space,
          actor: o.actor,
          action: o.action,
          from: isoOption(o, 'since'),
          to: isoOption(o, 'until'),
          limit: limitOption(o.limit),
        }),
    },
    export: {
      usage: 'AUTHORITY',
      async run(ctx, [authority], _o, out) {
        for await (const e of ctx.audit.export(authority!)) out(auditLine(e).trimEnd())
      },
    },
  },
}

/** `--NAME ISO` as a date, when given. */
function isoOption(o: Options, name: 'since' | 'until'): Date | undefined {
  const value = o[name]
  if (value === undefined) return undefined
  const date = new Date(value)
  if (Number.isNaN(date.getTime())) throw new CliUsageError(`--${name} is an ISO 8601 date-time`)
  return date
}

/** `--limit`: 1 to 1000, 100 when not given. */
function limitOption(value: string | undefined): number {
  const n = Number(value ?? 100)
  if (!Number.isInteger(n) || n < 1 || n > 1000)
    throw new CliUsageError('--limit is a whole number from 1 to 1000')
  return n
}

async function setJoinRequests(ctx: AppContext, space: string, open: boolean) {
  const { uri } = await getHostedSpace(ctx, space)
  await ctx.admission.setJoinRequestsOpen(uri, open, OPERATOR)
  return { uri, joinRequests: open }
}

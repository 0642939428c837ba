/** Prisma's unique violation (P2002), so services can turn it into a domain error without Prisma codes. */
export class UniqueViolationError extends Error {
  override name = 'UniqueViolationError'
  constructor(
    readonly target: string[],
    options?: { cause?: unknown },
  ) {
    super(`unique constraint violated${target.length ? ` on ${target.join(', ')}` : ''}`, options)
  }
}

export function mapDbError(err: unknown): unknown {
  const e = err as { code?: unknown; meta?: { target?: unknown } }
  if (e?.code !== 'P2002') return err
  const t = e.meta?.target
  const target = Array.isArray(t) ? t.map(String) : typeof t === 'string' ? [t] : []
  return new UniqueViolationError(target, { cause: err })
}

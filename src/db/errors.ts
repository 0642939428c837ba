/**
 * The one place Prisma's error codes are interpreted. Services catch these classes (never Prisma
 * codes) and turn them into domain errors such as SpaceAlreadyExists.
 */
export class DbError extends Error {
  override name = 'DbError'
}

/** A unique constraint refused the write (Prisma P2002). `target` names the columns when known. */
export class UniqueViolationError extends DbError {
  override name = 'UniqueViolationError'
  constructor(
    readonly target: string[],
    options?: { cause?: unknown },
  ) {
    super(`unique constraint violated${target.length ? ` on ${target.join(', ')}` : ''}`, options)
  }
}

/** An update or delete found no row to act on (Prisma P2025). */
export class RowNotFoundError extends DbError {
  override name = 'RowNotFoundError'
}

export function mapDbError(err: unknown): unknown {
  const e = err as { code?: unknown; meta?: { target?: unknown } }
  if (e?.code === 'P2002') {
    const t = e.meta?.target
    const target = Array.isArray(t) ? t.map(String) : typeof t === 'string' ? [t] : []
    return new UniqueViolationError(target, { cause: err })
  }
  if (e?.code === 'P2025') return new RowNotFoundError('row not found', { cause: err })
  return err
}

import type { Clock } from '../clock.js'
import type { Db } from '../db/client.js'

/** The repos that have written to a space (the sync boundary, not an access list). */
export class WriterSet {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  /** The DIDs of a space's writers. */
  async writers(space: string): Promise<string[]> {
    const rows = await this.db.prisma.spaceWriter.findMany({
      where: { space },
      select: { did: true },
      orderBy: { did: 'asc' },
    })
    return rows.map((r) => r.did)
  }

  /** Records a writer's latest state (used by notifyWrite; the sequencing rules live there). */
  async record(
    space: string,
    did: string,
    state: { repoRev: string; hash: Uint8Array; spaceRev: string },
  ): Promise<void> {
    const data = {
      repoRev: state.repoRev,
      hash: Buffer.from(state.hash),
      spaceRev: state.spaceRev,
      updatedAt: this.clock.now(),
    }
    await this.db.prisma.spaceWriter.upsert({
      where: { space_did: { space, did } },
      create: { space, did, ...data },
      update: data,
    })
  }
}

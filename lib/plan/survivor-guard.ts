// The preflight verdict on survivors (issue 11): with a snapshot given, any
// member holding a revision newer than the snapshot's stops the run before
// anything changes (exit 3), unless the operator accepts the loss; what was
// given up is then kept for the plan, the report and the summary.
import type { MemberData } from './survivor-read.ts'
import { DataLossError, compareWithSnapshot, comparisonText, type DataLossComparison, type SnapshotPoint } from './survivors.ts'

export interface SurvivorReport extends DataLossComparison {
  /** --accept-data-loss was given. */
  accepted: boolean
  /** What this run gives up, per member (empty when nothing newer survived). */
  givenUp: Array<{ member: string; revision: number; revisionsLost: number }>
  warnings: string[]
}

export function survivorGuard(held: MemberData[], snapshot: SnapshotPoint, accepted: boolean): { report: SurvivorReport; text: string; refusal?: DataLossError } {
  const c = compareWithSnapshot(held, snapshot)
  const warnings: string[] = []
  for (const m of c.unreadable) warnings.push(`${m.member}: what its data dir holds could not be read (${m.unreadable}); it is restored like the others`)
  if (c.clusterIds.length > 1) warnings.push(`the members hold data of ${c.clusterIds.length} different clusters (${c.clusterIds.join(', ')}): is every host in the inventory a member of this cluster?`)
  const givenUp = accepted ? c.newer.map((m) => ({ member: m.member, revision: m.revision!, revisionsLost: m.revisionsLost })) : []
  if (givenUp.length) warnings.push(`--accept-data-loss: giving up ${c.revisionsLost} revision(s) held by ${givenUp.map((g) => `${g.member} (revision ${g.revision})`).join(', ')}; the snapshot is at revision ${snapshot.revision}`)
  return {
    report: { ...c, accepted, givenUp, warnings },
    text: comparisonText(c, accepted),
    refusal: c.newer.length && !accepted ? new DataLossError(c) : undefined,
  }
}

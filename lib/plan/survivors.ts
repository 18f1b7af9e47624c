// Never roll back past a survivor's data (issue 11). Pure: what each member
// held (survivor-read.ts) against the snapshot's revision, and which member to
// recover from when the operator asks for the freshest one. After a quorum
// loss the newest data is often on a member still up, not in the last backup;
// restoring the backup over it loses those writes while health, IDs and hashkv
// all look perfect, so this is decided before anything changes.
import { ExitCode, RescueError } from '../errors.ts'
import type { MemberData } from './survivor-read.ts'

export interface SnapshotPoint {
  revision: number
  raftIndex?: number
}

export interface MemberComparison {
  member: string
  state: MemberData['state']
  revision?: number
  raftIndex?: number
  clusterId?: string
  /** Revisions this member holds past the snapshot: lost if the snapshot is restored over it. */
  revisionsLost: number
  unreadable?: string
}

export interface DataLossComparison {
  snapshot: SnapshotPoint
  members: MemberComparison[]
  /** Members holding revisions newer than the snapshot's. */
  newer: MemberComparison[]
  /** The most revisions any member would lose. */
  revisionsLost: number
  /** Members that hold data etcd-rescue could not read: what they held is unknown. */
  unreadable: MemberComparison[]
  /** Distinct cluster IDs seen (hex); more than one means data of different clusters. */
  clusterIds: string[]
}

export function compareWithSnapshot(held: MemberData[], snapshot: SnapshotPoint): DataLossComparison {
  const members = held.map((d): MemberComparison => ({
    member: d.member,
    state: d.state,
    revision: d.revision,
    raftIndex: d.raftIndex,
    clusterId: d.clusterId,
    revisionsLost: d.revision !== undefined ? Math.max(0, d.revision - snapshot.revision) : 0,
    unreadable: d.hasData && d.revision === undefined ? (d.error ?? 'not read') : undefined,
  }))
  const newer = members.filter((m) => m.revisionsLost > 0)
  return {
    snapshot,
    members,
    newer,
    revisionsLost: Math.max(0, ...members.map((m) => m.revisionsLost)),
    unreadable: members.filter((m) => m.unreadable),
    clusterIds: [...new Set(held.map((d) => d.clusterId).filter((c): c is string => Boolean(c)))],
  }
}

/** The refusal: every member that would lose data, with its revision, the snapshot's and the count lost. */
export class DataLossError extends RescueError {
  constructor(readonly comparison: DataLossComparison) {
    const c = comparison
    const lines = c.newer.map((m) => `  ${m.member} (${m.state}) holds revision ${m.revision}, the snapshot ${c.snapshot.revision}: ${m.revisionsLost} revision(s) would be lost`)
    super(`restoring this snapshot would roll back data that survived:\n${lines.join('\n')}\nNothing was changed.`, {
      exitCode: ExitCode.PREFLIGHT,
      hint: 'Recover from the freshest member instead (--from-survivors, without --snapshot), or take a newer snapshot. --accept-data-loss restores this snapshot anyway and records what was given up.',
    })
  }
}

/** One member's row for the plan and --check: what it holds against the snapshot. */
export function describeHeld(m: MemberComparison): string {
  if (m.state === 'none') return 'no member data'
  if (m.unreadable) return `${m.state}, could not be read: ${m.unreadable}`
  const idx = m.raftIndex !== undefined ? `, raft index ${m.raftIndex}` : ''
  const cid = m.clusterId ? `, cluster ${m.clusterId}` : ''
  return `${m.state}, revision ${m.revision}${idx}${cid}`
}

export function comparisonText(c: DataLossComparison, accepted = false): string {
  const width = Math.max(...c.members.map((m) => m.member.length))
  const lines = [`Data on the members against the snapshot (revision ${c.snapshot.revision}${c.snapshot.raftIndex ? `, raft index ${c.snapshot.raftIndex}` : ''}):`]
  for (const m of c.members) {
    const verdict = m.unreadable ? '? unknown' : m.state === 'none' ? '' : m.revisionsLost ? `✖ ${m.revisionsLost} revision(s) newer than the snapshot${accepted ? ': given up (--accept-data-loss)' : ''}` : '✔ nothing newer'
    lines.push(`  ${m.member.padEnd(width)}  ${describeHeld(m)}${verdict ? `  ${verdict}` : ''}`)
  }
  if (c.clusterIds.length > 1) lines.push(`  ! the members hold data of ${c.clusterIds.length} different clusters: ${c.clusterIds.join(', ')}`)
  return lines.join('\n')
}

export interface SurvivorChoice {
  chosen: MemberData
  reason: string
  /** What every member held, chosen one included, in inventory order. */
  held: MemberData[]
}

/** --from-survivors cannot go on: no data, unreadable data, or data of different clusters. Exit 3. */
export class SurvivorChoiceError extends RescueError {
  constructor(message: string, hint: string) {
    super(`${message}\nNothing was changed.`, { exitCode: ExitCode.PREFLIGHT, hint })
  }
}

/** Freshest first: higher revision; then higher raft index when both are known; then running over stopped. */
function fresher(a: MemberData, b: MemberData): number {
  if (a.revision !== b.revision) return (b.revision ?? -1) - (a.revision ?? -1)
  if (a.raftIndex !== undefined && b.raftIndex !== undefined && a.raftIndex !== b.raftIndex) return b.raftIndex - a.raftIndex
  if (a.state !== b.state) return a.state === 'running' ? -1 : 1
  return 0
}

/**
 * The member to recover from: the one with the highest revision, then raft
 * index, a running member over a stopped one (a stopped member's database may
 * trail the WAL etcd would replay), then inventory order. Members whose database
 * is damaged (the walk of its pages finds no sound etcd database) are passed over. Refuses
 * when it cannot be sure: no member holds readable data, one could not be read
 * (it might be the freshest), or members hold data of different clusters.
 */
export function chooseSurvivor(held: MemberData[]): SurvivorChoice {
  const withData = held.filter((d) => d.hasData)
  if (!withData.length) {
    throw new SurvivorChoiceError(`no member holds data to recover from (${held.map((d) => d.member).join(', ')}: no member dir in the data dir)`, 'Recover from a backup with --snapshot FILE.')
  }
  // A damaged database is a casualty of the disaster: passed over, and shown in the plan.
  const unreadable = withData.filter((d) => d.revision === undefined && !d.damaged)
  if (unreadable.length) {
    throw new SurvivorChoiceError(
      `cannot read what ${unreadable.length === 1 ? 'this member holds' : 'these members hold'}, so the freshest member is unknown:\n${unreadable.map((d) => `  ${d.member} (${d.state}): ${d.error ?? 'not read'}`).join('\n')}`,
      'Make the member readable (a running member must answer endpoint status; a stopped one needs a readable member/snap/db, and awk and od), or recover from a backup with --snapshot FILE.',
    )
  }
  const clusters = new Map<string, string[]>()
  for (const d of withData) if (d.clusterId) clusters.set(d.clusterId, [...(clusters.get(d.clusterId) ?? []), d.member])
  if (clusters.size > 1) {
    throw new SurvivorChoiceError(
      `the members hold data of different clusters: ${[...clusters].map(([id, names]) => `cluster ${id} on ${names.join(', ')}`).join('; ')}`,
      'A member from another cluster is not a survivor of this one. Check the inventory, or recover from a backup with --snapshot FILE.',
    )
  }
  const readable = withData.filter((d) => d.revision !== undefined)
  if (!readable.length) {
    throw new SurvivorChoiceError(`no member holds readable data: ${withData.map((d) => `${d.member}: ${d.error}`).join('; ')}`, 'Recover from a backup with --snapshot FILE.')
  }
  const ranked = [...readable].sort(fresher)
  const [chosen, next] = ranked
  return { chosen, reason: reasonFor(chosen, next), held }
}

function reasonFor(chosen: MemberData, next: MemberData | undefined): string {
  if (!next) return `the only member with readable data (revision ${chosen.revision})`
  if (chosen.revision !== next.revision) return `highest revision: ${chosen.revision}, next ${next.member} at ${next.revision}`
  if (chosen.raftIndex !== undefined && next.raftIndex !== undefined && chosen.raftIndex !== next.raftIndex) {
    return `revision ${chosen.revision} like ${next.member}, higher raft index (${chosen.raftIndex} against ${next.raftIndex})`
  }
  if (chosen.state !== next.state) return `revision ${chosen.revision} like ${next.member}, and running (a stopped member's database may trail its WAL)`
  return `revision ${chosen.revision} like ${next.member}; first in the inventory`
}

export function choiceText(c: SurvivorChoice): string {
  const lines = [`Recovering from the freshest member, ${c.chosen.member}: ${c.reason}`]
  for (const d of c.held) {
    const idx = d.raftIndex !== undefined ? `, raft index ${d.raftIndex}` : ''
    const what = !d.hasData ? 'no member data' : d.revision === undefined ? `${d.state}, damaged, passed over: ${d.error}` : `${d.state}, revision ${d.revision}${idx}${d.clusterId ? `, cluster ${d.clusterId}` : ''}`
    lines.push(`  ${d === c.chosen ? '→' : ' '} ${d.member}: ${what}`)
  }
  return lines.join('\n')
}

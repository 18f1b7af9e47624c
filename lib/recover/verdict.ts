// Whether the evidence read off the members proves the recovery the plan
// intended. Pure: every way a "healthy" cluster can still be the wrong one
// (FIELD-NOTES, "Health is not enough") is a unit test here.
import type { EndpointStatus, ListedMember } from '../etcd/etcdctl.ts'
import type { RecoveryPlan } from '../plan/recovery.ts'

export interface Check {
  name: string
  ok: boolean
  detail: string
}

export interface Evidence {
  /** Per member name: its health and `endpoint status`, as read on its own host. */
  members: Record<string, { healthy: boolean; status?: EndpointStatus }>
  /** The revision hashkv was taken at (the lowest member revision). */
  hashRevision: number
  /** Per member name: `hashkv` at hashRevision, or `error: …`. */
  hashes: Record<string, string>
  /** `member list` as one member sees it; undefined when it could not be read. */
  memberList?: ListedMember[]
  alarms: { ok: boolean; text: string }
}

const hex = (id?: string) => (id ? BigInt(id).toString(16) : 'nothing')

export function judge(plan: RecoveryPlan, e: Evidence, snapshotRevision: number): Check[] {
  const checks: Check[] = []
  const status = (name: string) => e.members[name]?.status
  const add = (name: string, ok: boolean, good: string, bad: string) => checks.push({ name, ok, detail: ok ? good : bad })

  const unhealthy = plan.members.filter((m) => !e.members[m.name]?.healthy).map((m) => m.name)
  add('healthy', !unhealthy.length, `all ${plan.members.length} members healthy`, `not healthy: ${unhealthy.join(', ')}`)

  const wrongCluster = plan.members.filter((m) => status(m.name)?.clusterId !== plan.clusterId)
  add('cluster-id', !wrongCluster.length, `every member reports ${plan.clusterIdHex}`,
    `expected ${plan.clusterIdHex}; ${wrongCluster.map((m) => `${m.name} reports ${hex(status(m.name)?.clusterId)}`).join(', ')}`)

  const wrongMember = plan.members.filter((m) => status(m.name)?.memberId !== m.memberId)
  add('member-ids', !wrongMember.length, 'every member has its predicted ID',
    `unexpected member ID on ${wrongMember.map((m) => `${m.name} (${hex(status(m.name)?.memberId)}, expected ${m.memberIdHex})`).join(', ')}`)

  const leaders = new Set(plan.members.map((m) => status(m.name)?.leader).filter((l): l is string => Boolean(l) && l !== '0'))
  const leaderName = plan.members.find((m) => leaders.has(m.memberId))?.name
  add('one-leader', leaders.size === 1 && Boolean(leaderName), `leader ${leaderName}`,
    leaders.size === 1 ? `the leader ${hex([...leaders][0])} is not one of the planned members` : `members see ${leaders.size} different leaders`)

  const floor = snapshotRevision + (plan.bumpRevision ?? 0)
  const lowest = Math.min(...plan.members.map((m) => status(m.name)?.revision ?? 0))
  const revText = `lowest member revision ${lowest}, snapshot revision ${snapshotRevision}${plan.bumpRevision ? ` + bump ${plan.bumpRevision}` : ''}`
  add('revision', lowest >= floor, revText, `${revText}: data is missing`)

  const hashes = plan.members.map((m) => e.hashes[m.name] ?? 'error: not read')
  const same = new Set(hashes).size === 1 && !hashes[0].startsWith('error')
  add('hashkv', same, `equal on all members at revision ${e.hashRevision} (${hashes[0]})`,
    `differs at revision ${e.hashRevision}: ${plan.members.map((m, i) => `${m.name}=${hashes[i]}`).join(', ')}`)

  const expected = plan.members.map((m) => `${m.name}=${m.memberId}=${m.peerUrl}`).sort()
  const actual = (e.memberList ?? []).map((l) => `${l.name}=${l.id}=${l.peerUrls.join(',')}`).sort()
  add('member-list', JSON.stringify(expected) === JSON.stringify(actual), `${actual.length} members as planned`,
    e.memberList ? `member list differs from the plan: ${actual.join(' ')}` : 'could not read the member list')

  add('no-alarms', e.alarms.ok && !e.alarms.text, 'none', e.alarms.ok ? `alarms: ${e.alarms.text}` : `cannot list alarms: ${e.alarms.text}`)
  return checks
}

// "Healthy" is not "recovered" (FIELD-NOTES, "Health is not enough"): a member
// restored from another snapshot, or with a mistyped token, still reports
// healthy. So after quorum we prove the cluster is the one we planned: expected
// cluster and member IDs everywhere, one leader, equal hashkv at one revision,
// revision at least the snapshot's (plus any bump), the full member list, no alarms.
import { shellCommand } from '../shell/quote.ts'
import { etcdctlArgv, parseEndpointStatus, parseHashKv, parseMemberList, type EndpointStatus, type TlsFiles } from '../etcd/etcdctl.ts'
import type { SshHost } from '../ssh/connection.ts'
import type { MemberPlan, RecoveryPlan } from '../plan/recovery.ts'

export interface Check {
  name: string
  ok: boolean
  detail: string
}

export interface MemberProbe {
  healthy: boolean
  status?: EndpointStatus
  error?: string
}

const SEP = '@@etcd-rescue@@'

/** One round trip: the member's own status and health, read on its host. */
export async function probeMember(host: SshHost, m: Pick<MemberPlan, 'etcdctl' | 'clientUrl'>, tls?: TlsFiles): Promise<MemberProbe> {
  const ctl = (args: string[]) => shellCommand(etcdctlArgv(m.etcdctl, m.clientUrl, tls, args))
  const r = await host.exec(`${ctl(['endpoint', 'status', '-w', 'json'])}; echo ${SEP}; ${ctl(['endpoint', 'health', '-w', 'json'])}`, {
    allowFailure: true,
    timeoutMs: 10_000,
  })
  const [statusText, healthText] = r.stdout.split(SEP)
  let status: EndpointStatus | undefined
  try {
    status = parseEndpointStatus(statusText)
  } catch {
    status = undefined
  }
  const healthy = /"health":\s*true/.test(healthText ?? '')
  const error = healthy ? undefined : lastLine(r.stderr) || lastLine(healthText ?? '') || 'no answer'
  return { healthy, status, error }
}

function lastLine(s: string): string {
  return s.trim().split('\n').filter(Boolean).pop()?.replace(/^\{"level".*"msg":"([^"]*)".*$/, '$1') ?? ''
}

export async function verifyCluster(
  plan: RecoveryPlan,
  hosts: Map<string, SshHost>,
  snapshotRevision: number,
  tls?: TlsFiles,
): Promise<{ checks: Check[]; statuses: Record<string, EndpointStatus | undefined> }> {
  const checks: Check[] = []
  const probes = await Promise.all(plan.members.map((m) => probeMember(hosts.get(m.name)!, m, tls)))
  const statuses: Record<string, EndpointStatus | undefined> = {}
  plan.members.forEach((m, i) => (statuses[m.name] = probes[i].status))

  const unhealthy = plan.members.filter((_, i) => !probes[i].healthy).map((m) => m.name)
  checks.push({ name: 'healthy', ok: unhealthy.length === 0, detail: unhealthy.length ? `not healthy: ${unhealthy.join(', ')}` : `all ${plan.members.length} members healthy` })

  const wrongCluster = plan.members.filter((m) => statuses[m.name]?.clusterId !== plan.clusterId)
  checks.push({
    name: 'cluster-id',
    ok: wrongCluster.length === 0,
    detail: wrongCluster.length
      ? `expected ${plan.clusterIdHex}; ${wrongCluster.map((m) => `${m.name} reports ${hexOf(statuses[m.name]?.clusterId)}`).join(', ')}`
      : `every member reports ${plan.clusterIdHex}`,
  })

  const wrongMember = plan.members.filter((m) => statuses[m.name]?.memberId !== m.memberId)
  checks.push({
    name: 'member-ids',
    ok: wrongMember.length === 0,
    detail: wrongMember.length ? `unexpected member ID on ${wrongMember.map((m) => m.name).join(', ')}` : 'every member has its predicted ID',
  })

  const leaders = new Set(plan.members.map((m) => statuses[m.name]?.leader).filter((l) => l && l !== '0'))
  const leaderName = plan.members.find((m) => leaders.has(m.memberId))?.name
  checks.push({
    name: 'one-leader',
    ok: leaders.size === 1 && Boolean(leaderName),
    detail: leaders.size === 1 ? `leader ${leaderName ?? [...leaders][0]}` : `members disagree on the leader (${leaders.size} seen)`,
  })

  const minRevision = Math.min(...plan.members.map((m) => statuses[m.name]?.revision ?? 0))
  const floor = snapshotRevision + (plan.bumpRevision ?? 0)
  checks.push({
    name: 'revision',
    ok: minRevision >= floor,
    detail: `lowest member revision ${minRevision}, snapshot revision ${snapshotRevision}${plan.bumpRevision ? ` + bump ${plan.bumpRevision}` : ''}`,
  })

  // hashkv at one revision every member has: equal hashes mean equal key-value history.
  const first = plan.members[0]
  const firstHost = hosts.get(first.name)!
  const hashes = await Promise.all(plan.members.map(async (m) => {
    const r = await hosts.get(m.name)!.exec(
      shellCommand(etcdctlArgv(m.etcdctl, m.clientUrl, tls, ['endpoint', 'hashkv', `--rev=${minRevision}`, '-w', 'json'])),
      { allowFailure: true, timeoutMs: 15_000 },
    )
    try {
      return parseHashKv(r.stdout).hash
    } catch {
      return `error: ${lastLine(r.stderr)}`
    }
  }))
  const distinct = new Set(hashes)
  checks.push({
    name: 'hashkv',
    ok: distinct.size === 1 && !hashes[0].startsWith('error'),
    detail: distinct.size === 1 ? `equal on all members at revision ${minRevision} (${hashes[0]})` : `differs at revision ${minRevision}: ${plan.members.map((m, i) => `${m.name}=${hashes[i]}`).join(', ')}`,
  })

  const list = await firstHost.exec(shellCommand(etcdctlArgv(first.etcdctl, first.clientUrl, tls, ['member', 'list', '-w', 'json'])), { allowFailure: true, timeoutMs: 10_000 })
  let listed: ReturnType<typeof parseMemberList> = []
  try {
    listed = parseMemberList(list.stdout)
  } catch {
    listed = []
  }
  const expected = plan.members.map((m) => `${m.name}=${m.memberId}=${m.peerUrl}`).sort()
  const actual = listed.map((l) => `${l.name}=${l.id}=${l.peerUrls.join(',')}`).sort()
  checks.push({
    name: 'member-list',
    ok: JSON.stringify(expected) === JSON.stringify(actual),
    detail: JSON.stringify(expected) === JSON.stringify(actual) ? `${listed.length} members as planned` : `member list differs from the plan: ${actual.join(' ')}`,
  })

  const alarms = await firstHost.exec(shellCommand(etcdctlArgv(first.etcdctl, first.clientUrl, tls, ['alarm', 'list'])), { allowFailure: true, timeoutMs: 10_000 })
  const alarmText = alarms.stdout.trim()
  checks.push({ name: 'no-alarms', ok: alarms.code === 0 && alarmText === '', detail: alarmText ? `alarms: ${alarmText}` : alarms.code === 0 ? 'none' : `cannot list alarms: ${lastLine(alarms.stderr)}` })

  return { checks, statuses }
}

function hexOf(id?: string): string {
  return id ? BigInt(id).toString(16) : 'nothing'
}

// Reading what verdict.ts judges: each member's health and status on its own
// host, hashkv at one common revision, the member list and alarms.
import { sh } from '../shell/sh.ts'
import { etcdctlArgv, parseEndpointStatus, parseHashKv, parseMemberList, type EndpointStatus } from '../etcd/etcdctl.ts'
import type { SshHost } from '../ssh/connection.ts'
import type { MemberPlan, RecoveryPlan } from '../plan/recovery.ts'
import { judge, type Check, type Evidence } from './verdict.ts'

export type { Check }
export interface MemberProbe {
  healthy: boolean
  status?: EndpointStatus
  error?: string
}

/** The member's own status and health, read on its host: two channels at once on one connection. */
export async function probeMember(host: SshHost, m: Pick<MemberPlan, 'etcdctl' | 'clientUrl' | 'tls'>): Promise<MemberProbe> {
  const ctl = (args: string[]) => host.exec(sh`${etcdctlArgv(m.etcdctl, m.clientUrl, m.tls, args)}`, { allowFailure: true, timeoutMs: 10_000 })
  const [st, health] = await Promise.all([ctl(['endpoint', 'status', '-w', 'json']), ctl(['endpoint', 'health', '-w', 'json'])])
  let status: EndpointStatus | undefined
  try {
    status = parseEndpointStatus(st.stdout)
  } catch {
    status = undefined
  }
  const healthy = /"health":\s*true/.test(health.stdout)
  const error = healthy ? undefined : lastLine(health.stderr) || lastLine(health.stdout) || 'no answer'
  return { healthy, status, error }
}

function lastLine(s: string): string {
  return s.trim().split('\n').filter(Boolean).pop()?.replace(/^\{"level".*"msg":"([^"]*)".*$/, '$1') ?? ''
}

/** Reads the evidence off every member (one round of parallel SSH calls each step) and judges it. */
export async function verifyCluster(
  plan: RecoveryPlan,
  hosts: Map<string, SshHost>,
  snapshotRevision: number,
): Promise<{ checks: Check[]; evidence: Evidence }> {
  const run = (m: MemberPlan, args: string[], timeoutMs = 10_000) =>
    hosts.get(m.name)!.exec(sh`${etcdctlArgv(m.etcdctl, m.clientUrl, m.tls, args)}`, { allowFailure: true, timeoutMs })
  const probes = await Promise.all(plan.members.map((m) => probeMember(hosts.get(m.name)!, m)))
  const members = Object.fromEntries(plan.members.map((m, i) => [m.name, { healthy: probes[i].healthy, status: probes[i].status }]))
  // hashkv at one revision every member has: equal hashes mean equal key-value history.
  const hashRevision = Math.min(...probes.map((p) => p.status?.revision ?? 0))
  const first = plan.members[0]
  const [hashes, list, alarms] = await Promise.all([
    Promise.all(plan.members.map(async (m) => {
      const r = await run(m, ['endpoint', 'hashkv', `--rev=${hashRevision}`, '-w', 'json'], 15_000)
      try {
        return parseHashKv(r.stdout).hash
      } catch {
        return `error: ${lastLine(r.stderr)}`
      }
    })),
    run(first, ['member', 'list', '-w', 'json']),
    run(first, ['alarm', 'list']),
  ])
  let memberList: Evidence['memberList']
  try {
    memberList = parseMemberList(list.stdout)
  } catch {
    memberList = undefined
  }
  const evidence: Evidence = {
    members,
    hashRevision,
    hashes: Object.fromEntries(plan.members.map((m, i) => [m.name, hashes[i]])),
    memberList,
    alarms: { ok: alarms.code === 0, text: alarms.code === 0 ? alarms.stdout.trim() : lastLine(alarms.stderr) },
  }
  return { checks: judge(plan, evidence, snapshotRevision), evidence }
}

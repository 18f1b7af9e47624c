// Reading what verdict.ts judges: each member's health and status on its own
// host, hashkv at one common revision, the member list and alarms.
import { sh } from '../shell/sh.ts'
import { etcdctlArgv, parseEndpointStatus, parseHashKv, parseMemberList, type EndpointStatus } from '../etcd/etcdctl.ts'
import type { SshHost } from '../ssh/connection.ts'
import type { MemberPlan, RecoveryPlan } from '../plan/recovery.ts'
import { judge, type Check, type Evidence } from './verdict.ts'
import { Gateway } from '../etcd/gateway.ts'

export type { Check }
/** What reading a member needs of its host: run a command, reach a port. An SshHost, or a run's session on it. */
export type RemoteHost = Pick<SshHost, 'name' | 'exec' | 'forward'>
export interface MemberProbe {
  healthy: boolean
  status?: EndpointStatus
  error?: string
}

/**
 * A plain-http member is read through etcd's JSON gateway over a TCP connection
 * forwarded by the member's own SSH connection: no process is started on the
 * host per read, so polling costs no login shell. TLS members are read with
 * etcdctl on their host, which has the client certificates.
 */
export function gatewayFor(host: RemoteHost, clientUrl: string): Gateway | undefined {
  const u = new URL(clientUrl)
  if (u.protocol !== 'http:') return undefined
  return new Gateway(clientUrl, () => host.forward(u.hostname, Number(u.port)))
}

function reason(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0]
}

/** The member's own status and health, read on its own host. */
export async function probeMember(host: RemoteHost, m: Pick<MemberPlan, 'etcdctl' | 'clientUrl' | 'tls'>): Promise<MemberProbe> {
  const gw = gatewayFor(host, m.clientUrl)
  if (gw) {
    const [st, health] = await Promise.allSettled([gw.status(), gw.health()])
    const status = st.status === 'fulfilled' ? st.value : undefined
    if (health.status === 'rejected') return { healthy: false, status, error: reason(health.reason) }
    return { healthy: health.value.healthy, status, error: health.value.healthy ? undefined : health.value.reason ?? 'unhealthy' }
  }
  return probeWithEtcdctl(host, m)
}

/** Two channels at once on one connection: etcdctl endpoint status and health. */
async function probeWithEtcdctl(host: RemoteHost, m: Pick<MemberPlan, 'etcdctl' | 'clientUrl' | 'tls'>): Promise<MemberProbe> {
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
  hosts: Map<string, RemoteHost>,
  snapshotRevision: number,
): Promise<{ checks: Check[]; evidence: Evidence }> {
  const run = (m: MemberPlan, args: string[], timeoutMs = 10_000) =>
    hosts.get(m.name)!.exec(sh`${etcdctlArgv(m.etcdctl, m.clientUrl, m.tls, args)}`, { allowFailure: true, timeoutMs })
  const probes = await Promise.all(plan.members.map((m) => probeMember(hosts.get(m.name)!, m)))
  const members = Object.fromEntries(plan.members.map((m, i) => [m.name, { healthy: probes[i].healthy, status: probes[i].status }]))
  // hashkv at one revision every member has: equal hashes mean equal key-value history.
  const hashRevision = Math.min(...probes.map((p) => p.status?.revision ?? 0))
  const first = plan.members[0]
  const gws = new Map(plan.members.map((m) => [m.name, gatewayFor(hosts.get(m.name)!, m.clientUrl)]))
  const firstGw = gws.get(first.name)
  const [hashes, memberList, alarms] = await Promise.all([
    // hashkv has no gateway route of its own (etcd maps HashKV onto /v3/maintenance/hash, which
    // answers Hash): it is read with etcdctl on each host.
    Promise.all(plan.members.map(async (m) => {
      const r = await run(m, ['endpoint', 'hashkv', `--rev=${hashRevision}`, '-w', 'json'], 15_000)
      try {
        return parseHashKv(r.stdout).hash
      } catch {
        return `error: ${lastLine(r.stderr)}`
      }
    })),
    firstGw
      ? firstGw.memberList().catch(() => undefined)
      : run(first, ['member', 'list', '-w', 'json']).then((list) => {
        try {
          return parseMemberList(list.stdout)
        } catch {
          return undefined
        }
      }),
    firstGw
      ? firstGw.alarms().then((text) => ({ ok: true, text }), (e) => ({ ok: false, text: reason(e) }))
      : run(first, ['alarm', 'list']).then((a) => ({ ok: a.code === 0, text: a.code === 0 ? a.stdout.trim() : lastLine(a.stderr) })),
  ])
  const evidence: Evidence = {
    members,
    hashRevision,
    hashes: Object.fromEntries(plan.members.map((m, i) => [m.name, hashes[i]])),
    memberList,
    alarms,
  }
  return { checks: judge(plan, evidence, snapshotRevision), evidence }
}

// Reading what verdict.ts judges: each member's health and status through its
// gateway, hashkv at one common revision (over gRPC), the member list and alarms.
import type { EndpointStatus } from '../etcd/etcdctl.ts'
import type { SshHost } from '../ssh/connection.ts'
import type { MemberPlan, RecoveryPlan } from '../plan/recovery.ts'
import { judge, type Check, type Evidence } from './verdict.ts'
import { remoteGateway, type Gateway } from '../etcd/gateway.ts'

export type { Check }

/**
 * What quorum wait and verification need of a member's host: run a command,
 * forward a connection. An SSH connection is one; so is a persistent session on it.
 */
export type RemoteHost = Pick<SshHost, 'name' | 'exec' | 'forward'>

/** Each member's host by name: a Map, or the run's sessions. */
export interface RemoteHosts {
  get(name: string): RemoteHost | undefined
}

export interface MemberProbe {
  healthy: boolean
  status?: EndpointStatus
  error?: string
}

/** A member as the run sees it: its gateway (one for the whole run) and what was last read through it. */
export interface MemberView {
  gateway: Gateway
  /** As the quorum wait last decided; undefined when not asked yet. */
  healthy?: boolean
  /** `endpoint status` read once the wait ended (every member at about the same moment). */
  status?: EndpointStatus
}

/** Per member name. The quorum wait fills it; verification reuses it. */
export type ClusterView = Map<string, MemberView>

/**
 * One gateway per member, reached through a connection its own host forwards:
 * no process started on the host per read, so polling costs no login shell.
 * Over https the CA, client certificate and key etcdctl uses there are read off
 * the host once (one command), on the first request, and kept in memory only.
 */
export function clusterView(members: ReadonlyArray<Pick<MemberPlan, 'name' | 'clientUrl' | 'tls'>>, hosts: RemoteHosts): ClusterView {
  return new Map(members.map((m) => [m.name, { gateway: remoteGateway(hostOf(hosts, m.name), m.clientUrl, m.tls) }]))
}

export function hostOf(hosts: RemoteHosts, name: string): RemoteHost {
  const h = hosts.get(name)
  if (!h) throw new Error(`no connection to ${name}`)
  return h
}

export function reason(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0]
}

/** Health and status at once, through the member's gateway. */
export async function readMember(gw: Gateway): Promise<MemberProbe> {
  const [st, health] = await Promise.allSettled([gw.status(), gw.health()])
  const status = st.status === 'fulfilled' ? st.value : undefined
  if (health.status === 'rejected') return { healthy: false, status, error: reason(health.reason) }
  return { healthy: health.value.healthy, status, error: health.value.healthy ? undefined : health.value.reason ?? 'unhealthy' }
}

/** The member's own status and health, read through its gateway from its host (etcdctl is not needed). */
export function probeMember(host: RemoteHost, m: Pick<MemberPlan, 'clientUrl' | 'tls'>): Promise<MemberProbe> {
  return readMember(remoteGateway(host, m.clientUrl, m.tls))
}

/**
 * Reads the evidence off every member and judges it. What the quorum wait read
 * (`view`: each member's gateway, health and status) is reused; a member it did
 * not see healthy, or whose status it could not read, is read again. Per-member
 * reads run in parallel; the member list and alarms come from one healthy member.
 */
export async function verifyCluster(
  plan: RecoveryPlan,
  hosts: RemoteHosts,
  snapshotRevision: number,
  view: ClusterView = clusterView(plan.members, hosts),
): Promise<{ checks: Check[]; evidence: Evidence }> {
  const seen = (m: MemberPlan) => view.get(m.name) ?? clusterView([m], hosts).get(m.name)!
  const known = (v: MemberView): MemberProbe | undefined => (v.healthy && v.status ? { healthy: true, status: v.status } : undefined)
  const asker = seen(plan.members.find((m) => known(seen(m))) ?? plan.members[0]).gateway
  const listed = asker.memberList().catch(() => undefined)
  const alarmed = asker.alarms().then((text) => ({ ok: true, text }), (e) => ({ ok: false, text: reason(e) }))
  const probes = await Promise.all(plan.members.map((m) => known(seen(m)) ?? readMember(seen(m).gateway)))
  const members = Object.fromEntries(plan.members.map((m, i) => [m.name, { healthy: probes[i].healthy, status: probes[i].status }]))
  // hashkv at one revision every member has: equal hashes mean equal key-value history.
  // It has no gateway route of its own (etcd maps HashKV onto /v3/maintenance/hash, which
  // answers Hash): it is asked over gRPC through the same forwarded connection, no process
  // started on the host.
  const hashRevision = Math.min(...probes.map((p) => p.status?.revision ?? 0))
  const hashes = await Promise.all(plan.members.map((m) => seen(m).gateway.hashKv(hashRevision).then((h) => h.hash, (e) => `error: ${reason(e)}`)))
  const evidence: Evidence = {
    members,
    hashRevision,
    hashes: Object.fromEntries(plan.members.map((m, i) => [m.name, hashes[i]])),
    memberList: await listed,
    alarms: await alarmed,
  }
  return { checks: judge(plan, evidence, snapshotRevision), evidence }
}

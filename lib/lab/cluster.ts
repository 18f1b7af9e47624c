// A fresh etcd cluster on a lab's hosts, started over SSH the way `recover`
// starts members (lib/etcd/process.ts: setsid -f, descriptors redirected, so
// the SSH session returns), and stopped by the PIDs found on each host, never
// by process name. Health is then read from the machine over the bridge.
import { RescueError } from '../errors.ts'
import { findPidsScript, startCommand, defaultLogFile, type EtcdProcessSpec } from '../etcd/process.ts'
import { sh } from '../shell/sh.ts'
import { CLIENT_PORT, PEER_PORT, clientUrl, etcdHealth, peerUrl } from './etcd-http.ts'
import { openLab, type LabRef } from './open.ts'
import { sshExec } from './ssh.ts'
import { systemdClusterSignal, systemdClusterStart } from './cluster-systemd.ts'
import type { HostState } from './state.ts'
import { LAB_DATA_DIR } from './names.ts'

export interface ClusterMember {
  host: string
  hostIndex: number
  name: string
  address: string
  clientUrl: string
  peerUrl: string
}

export interface ClusterStartOptions {
  /** --initial-cluster-token. Default etcd-rescue-lab-<lab name>. */
  token?: string
  /** Delete an existing member directory in the data dir first (lab only). Default false: refuse. */
  wipe?: boolean
  /** Give up waiting for every member to be healthy after this long. Default 60 s. */
  timeoutMs?: number
  log?: (line: string) => void
}

export interface ClusterStartResult {
  members: ClusterMember[]
  initialCluster: string
  token: string
  /** Comma-separated client URLs, for etcdctl --endpoints. */
  endpoints: string
  elapsedMs: number
}

export function clusterMembers(hosts: readonly HostState[]): ClusterMember[] {
  return hosts.map((h) => ({
    host: h.name,
    hostIndex: h.index,
    name: h.member,
    address: h.address,
    clientUrl: clientUrl(h.address),
    peerUrl: peerUrl(h.address),
  }))
}

export function memberSpec(m: ClusterMember, etcdBinDir: string, bootstrap?: EtcdProcessSpec['bootstrap']): EtcdProcessSpec {
  return { etcdBin: `${etcdBinDir}/etcd`, name: m.name, dataDir: LAB_DATA_DIR, peerUrl: m.peerUrl, clientUrl: m.clientUrl, bootstrap }
}

/** Start a brand-new cluster (--initial-cluster-state new) with every host of the lab as a member. */
export async function clusterStart(lab: LabRef, options: ClusterStartOptions = {}): Promise<ClusterStartResult> {
  const t0 = Date.now()
  const opened = openLab(lab)
  if (opened.state.systemd) return systemdClusterStart(opened, options)
  const { state } = opened
  const members = clusterMembers(state.hosts)
  const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(',')
  const token = options.token ?? `etcd-rescue-lab-${state.name}`

  await Promise.all(members.map(async (m) => {
    // One session per host: refuse a running member or old data (unless wipe), then start detached.
    const script = sh`D=${LAB_DATA_DIR}
pids=$(${findPidsScript(LAB_DATA_DIR, [CLIENT_PORT, PEER_PORT])})
if [ -n "$pids" ]; then echo "etcd is already running here (PID $(echo $pids))" >&2; exit 3; fi
${options.wipe
    ? sh`rm -rf "$D/member"`
    : sh`if [ -e "$D/member" ]; then echo "$D already holds a member; a fresh cluster needs it empty (--wipe)" >&2; exit 4; fi`}
${startCommand(memberSpec(m, state.etcd.binDir, { initialCluster, token }))}`
    const r = await sshExec(lab, m.hostIndex, script)
    if (r.code !== 0) throw new RescueError(`cannot start ${m.name}: ${r.stderr.trim() || `exit code ${r.code}`}`, { where: m.host })
  }))
  options.log?.(`started ${members.length} member(s); waiting for /health`)
  await waitHealthy(lab, members, options.timeoutMs ?? 60_000)
  return { members, initialCluster, token, endpoints: members.map((m) => m.clientUrl).join(','), elapsedMs: Date.now() - t0 }
}

/** Poll /health on every member until all say true; on timeout, name the sick ones with their log's end. */
export async function waitHealthy(lab: LabRef, members: readonly ClusterMember[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let sick: ClusterMember[] = [...members]
  while (sick.length > 0 && Date.now() < deadline) {
    const health = await Promise.all(sick.map((m) => etcdHealth(m.address, 2000)))
    sick = sick.filter((_, k) => health[k] !== true)
    if (sick.length > 0) await new Promise((r) => setTimeout(r, 200))
  }
  if (sick.length === 0) return
  const logs = await Promise.all(sick.map(async (m) => {
    const r = await sshExec(lab, m.hostIndex, sh`tail -n 5 ${defaultLogFile(m.name)}`, { timeoutMs: 10_000 })
    return `${m.host} (${m.name}):\n    ${r.stdout.trimEnd().split('\n').join('\n    ')}`
  }))
  throw new RescueError(`etcd not healthy after ${timeoutMs / 1000} s on ${sick.map((m) => m.host).join(', ')}`, {
    hint: `Last lines of their logs:\n${logs.join('\n')}`,
  })
}

export interface ClusterStopOptions {
  /** Only these hosts (1-based). Default: every host. */
  hosts?: number[]
  /** How long TERM gets before KILL. Default 10 s. */
  graceMs?: number
}

export interface StoppedMember {
  host: string
  /** PIDs (as the host numbers them) that were signalled; empty if none ran. */
  pids: number[]
}

/** Stop the member's etcd on each host: SIGTERM, then SIGKILL after the grace period. */
export function clusterStop(lab: LabRef, options: ClusterStopOptions = {}): Promise<StoppedMember[]> {
  return signalMembers(lab, options.hosts, options.graceMs ?? 10_000)
}

/** SIGKILL the member's etcd on each host, as a crash would. */
export function clusterKill(lab: LabRef, options: Omit<ClusterStopOptions, 'graceMs'> = {}): Promise<StoppedMember[]> {
  return signalMembers(lab, options.hosts, 0)
}

async function signalMembers(lab: LabRef, only: number[] | undefined, graceMs: number): Promise<StoppedMember[]> {
  const opened = openLab(lab)
  if (opened.state.systemd) return systemdClusterSignal(opened, only, graceMs === 0)
  const { state } = opened
  const hosts = state.hosts.filter((h) => !only || only.includes(h.index))
  const rounds = Math.ceil(graceMs / 100)
  // Wait for them to be gone (tini, PID 1 of the host, reaps them); KILL after the grace rounds.
  const script = sh`pids=$(${findPidsScript(LAB_DATA_DIR, [CLIENT_PORT, PEER_PORT])})
pids=$(echo $pids)
echo "$pids"
[ -z "$pids" ] && exit 0
sig=${graceMs > 0 ? 'TERM' : 'KILL'}; rounds=${rounds}; last=${rounds + 50}
kill -"$sig" $pids 2>/dev/null || true
i=0; while [ $i -lt "$last" ]; do alive=; for p in $pids; do [ -d /proc/$p ] && alive=1; done; [ -z "$alive" ] && exit 0; [ $i -eq "$rounds" ] && kill -KILL $pids 2>/dev/null; i=$((i+1)); sleep 0.1; done
echo "still running: $pids" >&2; exit 1`
  return Promise.all(hosts.map(async (h) => {
    const r = await sshExec(lab, h.index, script)
    if (r.code !== 0) throw new RescueError(`cannot stop etcd: ${r.stderr.trim() || `exit code ${r.code}`}`, { where: h.name })
    return { host: h.name, pids: r.stdout.trim().split(/\s+/).filter(Boolean).map(Number) }
  }))
}

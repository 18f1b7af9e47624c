// `cluster start|stop|kill` on a systemd lab, where etcd is kubespray's
// etcd.service (started at boot), not a process the lab starts over SSH: the
// same commands become systemctl calls through ops's sudo. `kill` is SIGKILL to
// the unit's processes, as a crash would be: with Restart= the unit comes back
// after RestartSec, exactly as it would on a real host.
import { RescueError } from '../errors.ts'
import { sh } from '../shell/sh.ts'
import type { ClusterMember, ClusterStartOptions, ClusterStartResult, StoppedMember } from './cluster.ts'
import { CLIENT_PORT, PEER_PORT } from './etcd-http.ts'
import { LAB_DATA_DIR } from './names.ts'
import type { OpenLab } from './open.ts'
import { sshExec } from './ssh.ts'
import { waitForUnits } from './up-systemd.ts'

function members(lab: OpenLab): ClusterMember[] {
  const scheme = lab.state.systemd?.tls ? 'https' : 'http'
  return lab.state.hosts.map((h) => ({
    host: h.name,
    hostIndex: h.index,
    name: h.member,
    address: h.address,
    clientUrl: `${scheme}://${h.address}:${CLIENT_PORT}`,
    peerUrl: `${scheme}://${h.address}:${PEER_PORT}`,
  }))
}

/** Start etcd.service on every host at once (Type=notify waits for quorum), with --wipe on fresh data. */
export async function systemdClusterStart(lab: OpenLab, options: ClusterStartOptions): Promise<ClusterStartResult> {
  const t0 = Date.now()
  const all = members(lab)
  const data = `${LAB_DATA_DIR}/member`
  await Promise.all(all.map(async (m) => {
    const script = options.wipe
      ? sh`systemctl stop etcd && rm -rf ${data} && systemctl start --no-block etcd`
      : sh`systemctl start --no-block etcd`
    const r = await sshExec(lab, m.hostIndex, script)
    if (r.code !== 0) throw new RescueError(`cannot start etcd.service: ${r.stderr.trim() || `exit code ${r.code}`}`, { where: m.host })
  }))
  options.log?.(`started etcd.service on ${all.length} host(s); waiting until active`)
  await waitForUnits(lab.state, lab.paths, options.timeoutMs ?? 60_000)
  const env = await sshExec(lab, 1, sh`. /etc/etcd.env && echo "$ETCD_INITIAL_CLUSTER_TOKEN"`)
  return {
    members: all,
    initialCluster: all.map((m) => `${m.name}=${m.peerUrl}`).join(','),
    token: env.stdout.trim(),
    endpoints: all.map((m) => m.clientUrl).join(','),
    elapsedMs: Date.now() - t0,
  }
}

/** systemctl stop (graceful) or kill -s KILL (a crash) of etcd.service; reports the main PID it had. */
export async function systemdClusterSignal(lab: OpenLab, hosts: number[] | undefined, kill: boolean): Promise<StoppedMember[]> {
  const chosen = lab.state.hosts.filter((h) => !hosts || hosts.includes(h.index))
  const script = sh`pid=$(systemctl show -p MainPID --value etcd)
[ "$pid" = 0 ] && pid=
echo "$pid"
[ -z "$pid" ] && exit 0
${kill ? sh`systemctl kill -s KILL etcd` : sh`systemctl stop etcd`}`
  return Promise.all(chosen.map(async (h) => {
    const r = await sshExec(lab, h.index, script)
    if (r.code !== 0) throw new RescueError(`cannot ${kill ? 'kill' : 'stop'} etcd.service: ${r.stderr.trim() || `exit code ${r.code}`}`, { where: h.name })
    return { host: h.name, pids: r.stdout.trim().split(/\s+/).filter(Boolean).map(Number) }
  }))
}

// The baseline etcd-rescue is measured against: an expert recovering by hand
// with OpenSSH, every step run on all hosts in parallel, connections multiplexed
// (ControlMaster) within the recovery, polling health every half second. The
// masters are closed at the end: a real disaster starts with no warm connections,
// and reused ones made the expert's copy 2.5x faster in later rounds. Written out as the bash an
// expert would type, so the comparison is of the same steps, not of a straw man.
// It checks nothing beyond health: that is the expert's shortcut, not ours.
// On hosts as kubespray makes them (systemd, TLS, a login user with sudo) the
// expert does what such a host asks: sudo, systemctl stop and start of the unit,
// the restored data handed to the unit's user, etcdctl with the TLS files.
import type { Member } from '../inventory/members.ts'
import { tlsArgs, type TlsFiles } from '../etcd/etcdctl.ts'
import { sh, joinScripts, type Script } from '../shell/sh.ts'

export interface ManualInput {
  members: Member[]
  snapshot: string
  /** Where etcd, etcdctl and (3.5+) etcdutl live on the hosts. */
  binDir: string
  restoreWith: 'etcdctl' | 'etcdutl'
  token: string
  controlDir: string
  /** The TLS files etcdctl needs on the first member's host for its health checks (https client URLs). */
  tls?: TlsFiles
}

export function manualScript(i: ManualInput): string {
  const m0 = i.members[0]
  const sshWith = (m: Member, extra: string[]) => sh`${[
    'ssh', '-F', 'none', ...(m.ssh.privateKeyFile ? ['-i', m.ssh.privateKeyFile] : []), '-o', 'BatchMode=yes',
    ...(m.ssh.knownHostsFiles ? ['-o', `UserKnownHostsFile=${m.ssh.knownHostsFiles.join(' ')}`] : []),
    '-o', 'ControlMaster=auto', '-o', `ControlPath=${i.controlDir}/%C`, '-o', 'ControlPersist=120',
    '-p', String(m.ssh.port), '-l', m.ssh.user ?? 'root', ...extra, m.ssh.host,
  ]}`
  const ssh = (m: Member) => sshWith(m, [])
  // A remote command is one argument of ssh: its text is quoted once more for the local shell.
  // A login user that becomes root runs it under sudo (no password: the lab's sudo asks none).
  const onHost = (m: Member, remote: Script) => sh`${ssh(m)} ${m.ssh.become ? sh`sudo -n sh -c ${remote.text}`.text : remote.text}`
  const unit = (m: Member) => (m.service === 'systemd' ? m.serviceName : undefined)
  const ic = i.members.map((m) => `${m.name}=${m.peerUrl}`).join(',')
  const all = i.members.map((m) => m.clientUrl).join(',')
  const bin = (t: string) => `${i.binDir}/${t}`
  const restoreCmd = (m: Member) => sh`${[
    ...(i.restoreWith === 'etcdctl' ? ['env', 'ETCDCTL_API=3'] : []), bin(i.restoreWith), 'snapshot', 'restore', '/var/tmp/snapshot.db',
    '--name', m.name, '--initial-cluster', ic, '--initial-cluster-token', i.token,
    '--initial-advertise-peer-urls', m.peerUrl, '--data-dir', `${m.dataDir}.new`,
  ]}`
  const startCmd = (m: Member) => sh`setsid -f ${[bin('etcd'), '--name', m.name, '--data-dir', m.dataDir,
    '--listen-peer-urls', m.peerUrl, '--initial-advertise-peer-urls', m.peerUrl,
    '--listen-client-urls', `${m.clientUrl},http://127.0.0.1:${new URL(m.clientUrl).port}`, '--advertise-client-urls', m.clientUrl]} >/var/log/etcd-manual.log 2>&1 </dev/null`
  const tlsFlags = sh`${tlsArgs(i.tls)}`
  // Every host at once; each one waited for by its PID, so under set -e a step that fails on any host ends the script.
  const each = (f: (m: Member) => Script) => joinScripts([sh`pids=`, ...i.members.map((m) => sh`${f(m)} & pids="$pids $!"`), sh`for p in $pids; do wait "$p"; done`])
  // Each step's end time goes to stdout, so the bench can show where the expert's time went too.
  return `${sh`#!/usr/bin/env bash
set -euo pipefail
mark() { echo "mark $1 $(date +%s.%N)"; }
mark begin
# 1. the snapshot to every host
${each((m) => sh`${ssh(m)} 'cat > /var/tmp/snapshot.db' < ${i.snapshot}`)}
mark copy
# 2. stop whatever etcd is left, as a careful operator does: its unit with systemctl; else
#    TERM, wait, KILL after 10 s (dedicated hosts: by exact name, never pkill -f)
${each((m) => onHost(m, unit(m)
    ? sh`systemctl stop ${unit(m)!}`
    : sh`pkill -TERM -x etcd; i=0; while pgrep -x etcd >/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; pkill -KILL -x etcd; true`))}
mark stop
# 3. restore each member with its own identity, old data moved aside (and, under a unit, given to its user)
${each((m) => onHost(m, sh`D=${m.dataDir}; rm -rf "$D.new" && ${restoreCmd(m)} >/dev/null 2>&1${unit(m) ? sh` && u=$(systemctl show -p User --value ${unit(m)!}) && { [ -z "$u" ] || chown -R "$u": "$D.new"; }` : sh``} && mv "$D" "$D.old.$(date +%s)" && mv "$D.new" "$D"`))}
mark restore
# 4. start etcd everywhere
${each((m) => onHost(m, unit(m) ? sh`systemctl start ${unit(m)!}` : startCmd(m)))}
mark start
# 5. poll until every endpoint is healthy
steps=${4 * i.members.length}; polls=1; deadline=$((SECONDS + 180))
until ${onHost(m0, sh`ETCDCTL_API=3 ${bin('etcdctl')} ${tlsFlags} --endpoints=${all} endpoint health >/dev/null 2>&1`)}; do
  [ "$SECONDS" -lt "$deadline" ] || { echo "the cluster was not healthy within 180 s" >&2; exit 1; }
  sleep 0.5; polls=$((polls + 1))
done
mark quorum
echo "commands $((steps + polls))"
# not timed: close the multiplexed connections, so no round starts with warm ones
${each((m) => sh`${sshWith(m, ['-O', 'exit'])} 2>/dev/null || true`)}`.text}\n`
}

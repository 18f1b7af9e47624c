// What preflight learns about a member host, from one read-only probe script
// run over SSH (one round trip per host). The script prints key=value lines;
// parsing them is pure and unit-tested.
import { sh, type Script } from '../shell/sh.ts'
import { findPidsScript } from '../etcd/process.ts'
import { FILE_ID, HASH_FILE } from './scripts.ts'
import { parseVersion, type EtcdVersion } from '../etcd/version.ts'
import { HostDataError, SHA256_RE, isPid, isSafeAbsolutePath, parseStateFile } from './grammar.ts'
import { parseUnitLines, parseUnitState, unitProbe, type UnitConfig } from './unit.ts'
import { unitHold } from './systemd.ts'
import { TLS_CHECK, expiredInRole, parseTlsLines, type TlsFileState } from './tls-check.ts'
import type { TlsFiles } from '../etcd/etcdctl.ts'

const USER_RE = /^[A-Za-z_][A-Za-z0-9_.-]*\$?$/

export interface ProbeInput {
  dataDir: string
  binDir?: string
  work: string
  /** Remote path the snapshot would have; its hash is read only when the size matches and no upload verified it. */
  snapshot: string
  snapshotSha: string
  snapshotSize: number
  ports: number[]
  service: 'systemd' | 'process'
  serviceName: string
  /** etcd_user from the inventory; else the unit's User= is checked. */
  etcdUser?: string
  /** The CA, certificate and key files etcdctl will use (TLS): each must exist and be readable. */
  tls?: TlsFiles
}

export interface HostFacts {
  uid: number
  hostname: string
  bins: { etcd?: string; etcdctl?: string; etcdutl?: string }
  version?: EtcdVersion
  /** Versions each tool reported, to catch a mixed install. */
  toolVersions: Record<string, string>
  dataDir: { exists: boolean; entries: number; hasMember: boolean; mountpoint: boolean; freeBytes?: number }
  /** partsBytes: what upload part files (an upload running now) take of the free space. */
  parent: { exists: boolean; writable: boolean; freeBytes?: number; partsBytes?: number }
  snapshot: { size?: number; sha256?: string }
  /** An interrupted run's restore: the journal's last line is `restored SHA TOKEN` (not yet `complete`). */
  restored?: { sha256: string; token: string }
  pids: number[]
  /** Processes listening on the member's client or peer port (from ss, where the host has it and tells who); address without brackets. */
  listeners: Array<{ address: string; port: number; pid: number; comm: string }>
  /** Restore dirs an earlier run left between its restores and their swap: this run's restore step removes them. */
  staleRestores?: Array<{ path: string; bytes: number }>
  has: { sha256sum: boolean; setsid: boolean; systemctl: boolean }
  /**
   * systemd members: how systemd has the unit (LoadState: loaded, not-found,
   * masked, ...; UnitFileState, to tell a runtime mask; ActiveState), and
   * whether an earlier run's hold file is there. Undefined when systemctl printed nothing.
   */
  unit?: { loadState: string; fileState: string; active: string; held: boolean }
  /** systemd members: the unit and its environment as systemd would start it. */
  unitConfig?: UnitConfig
  /** The user the restored data must belong to (etcd_user, else the unit's User=), and whether it exists. */
  etcdUser?: { name: string; exists: boolean }
  /** etcdctl's TLS files (the inventory's) that are missing, unreadable with the run's privileges, or expired. */
  tls?: TlsFileState
}

/**
 * Where an etcd tool is on a host: in $BINDIR when the inventory names one
 * (etcd_bin_dir), else on PATH, else in /usr/local/bin. Prints nothing if absent.
 */
export const FIND_BIN: Script = sh`find_bin() {
  if [ -n "$BINDIR" ]; then [ -x "$BINDIR/$1" ] && echo "$BINDIR/$1"; return 0; fi
  command -v "$1" 2>/dev/null || { [ -x "/usr/local/bin/$1" ] && echo "/usr/local/bin/$1"; } || true
}`

export function probeScript(p: ProbeInput): Script {
  return sh`
${HASH_FILE}
${FILE_ID}
D=${p.dataDir}; W=${p.work}; S=${p.snapshot}; BINDIR=${p.binDir ?? ''}; want_size=${p.snapshotSize}; want_sha=${p.snapshotSha}
P=$(dirname "$D")
echo "uid=$(id -u)"
echo "now=$(date +%s)"
echo "hostname=$(hostname 2>/dev/null || cat /etc/hostname)"
${FIND_BIN}
${TLS_CHECK}
E=$(find_bin etcd); C=$(find_bin etcdctl); U=$(find_bin etcdutl)
echo "bin.etcd=$E"; echo "bin.etcdctl=$C"; echo "bin.etcdutl=$U"
[ -n "$E" ] && echo "version.etcd=$("$E" --version 2>&1 | head -n 1)"
[ -n "$C" ] && echo "version.etcdctl=$(ETCDCTL_API=3 "$C" version 2>&1 | head -n 1)"
[ -n "$U" ] && echo "version.etcdutl=$("$U" version 2>&1 | head -n 1)"
if [ -d "$D" ]; then
  echo "data.exists=1"
  echo "data.entries=$(ls -A "$D" 2>/dev/null | grep -v -e '^lost+found$' -e '^etcd-rescue-old-' -e '^\.etcd-rescue-restore-' | wc -l)"
  [ -d "$D/member" ] && echo "data.member=1"
  # mountinfo writes a space in a path as \\040 and a backslash as \\134; the value goes to awk
  # through ENVIRON, as -v would read its backslashes as escapes.
  if mount_d=$(printf '%s\\n' "$D" | sed -e 's/\\\\/\\\\134/g' -e 's/ /\\\\040/g') awk '$5 == ENVIRON["mount_d"] { f = 1 } END { exit !f }' /proc/self/mountinfo 2>/dev/null; then
    echo "data.mountpoint=1"
    echo "data.free_kib=$(df -Pk "$D" | awk 'NR == 2 { print $4 }')"
  fi
fi
if [ -d "$P" ]; then
  echo "parent.exists=1"
  [ -w "$P" ] && echo "parent.writable=1"
  echo "parent.free_kib=$(df -Pk "$P" | awk 'NR == 2 { print $4 }')"
  # An upload of this run may be writing while this probe runs: its space is the snapshot's, counted once.
  echo "parent.parts_kib=$(du -sk "$S".part.* 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')"
fi
# Restore dirs an earlier run left (it ended between its restores and their swap): ours, never
# user data; this run's restore step removes them, and their room counts as free for it.
for x in "$W"/restore-* "$D"/.etcd-rescue-restore-*; do
  [ -d "$x" ] && echo "stale.restore=$(du -sk "$x" 2>/dev/null | awk '{ s += $1 } END { print s + 0 }') $x"
done
if [ -f "$S" ]; then
  sz=$(wc -c < "$S" | tr -d ' ')
  echo "snap.size=$sz"
  # An upload that verified this file recorded it: no need to hash it again.
  if [ "$sz" = "$want_size" ] && [ -f "$W/state" ] && grep -qx "verified $want_sha $(file_id "$S")" "$W/state"; then echo "snap.sha=$want_sha"
  elif [ "$sz" = "$want_size" ]; then echo "snap.sha=$(hash_file "$S")"; fi
fi
# The journal, every line: it is parsed (and refused if it does not parse) there, not here.
[ -f "$W/state" ] && head -n 1000 "$W/state" | sed 's/^/state.line=/'
echo "pids=$( { ${findPidsScript(p.dataDir, p.ports)}
} | tr '\\n' ' ')"
# Whatever listens on the member's ports: a process other than this member's etcd would keep
# the restored one from listening there. (ss of CentOS 7.0-7.3, iproute 3.10, has no -H: its
# header line is cut instead.)
if command -v ss >/dev/null 2>&1; then
  ss_filter=${`( ${p.ports.map((n) => `sport = :${n}`).join(' or ')} )`}
  { ss -Hltnp "$ss_filter" 2>/dev/null || ss -ltnp "$ss_filter" 2>/dev/null | sed 1d; } | sed 's/^/listen=/'
fi
command -v sha256sum >/dev/null 2>&1 && echo has.sha256sum=1
command -v setsid >/dev/null 2>&1 && echo has.setsid=1
command -v systemctl >/dev/null 2>&1 && echo has.systemctl=1
${p.service === 'systemd' ? sh`U=${p.serviceName}
[ -e ${unitHold(p.serviceName).file} ] && echo unit.held=1
${unitProbe()}
EU=${p.etcdUser ?? ''}
[ -n "$EU" ] || EU=$unit_user
if [ -n "$EU" ]; then echo "etcduser.name=$EU"; id -u "$EU" >/dev/null 2>&1 && echo etcduser.exists=1; fi` : sh``}
for f in ${[p.tls?.cert, p.tls?.key].filter((f): f is string => !!f)}; do tls_check tls. "$f"; done
for f in ${p.tls?.cacert ? [p.tls.cacert] : []}; do tls_check tlsca. "$f"; done
true
`
}

/**
 * Reads the probe's output. Nothing in it is trusted: paths must be absolute and
 * plain, PIDs whole numbers, hashes hex, and the state file's every line must
 * parse; anything else is a HostDataError (exit 3) naming the host and field.
 */
export function parseFacts(output: string, host = 'host', stateFile = 'state file'): HostFacts {
  const kv = new Map<string, string>()
  const stateLines: string[] = []
  const unitLines: string[] = []
  const tlsLines: string[] = []
  const listenLines: string[] = []
  const staleLines: string[] = []
  for (const line of output.split('\n')) {
    const i = line.indexOf('=')
    if (i <= 0) continue
    const key = line.slice(0, i)
    if (key === 'state.line') stateLines.push(line.slice(i + 1))
    // Every unit.* line but the hold's is the unit's part (unit.ts reads it).
    else if (key.startsWith('unit.') && key !== 'unit.held') unitLines.push(line)
    else if (key.startsWith('tls.') || key.startsWith('tlsca.')) tlsLines.push(line)
    else if (key === 'listen') listenLines.push(line.slice(i + 1))
    else if (key === 'stale.restore') staleLines.push(line.slice(i + 1))
    else kv.set(key, line.slice(i + 1).trim())
  }
  const userName = kv.get('etcduser.name')
  // It becomes a chown argument: held to the grammar of a user name.
  if (userName !== undefined && !USER_RE.test(userName)) throw new HostDataError(host, 'the etcd unit\'s User=', userName)
  const num = (k: string) => {
    const v = kv.get(k)
    if (!v) return undefined
    if (!/^\d+$/.test(v)) throw new HostDataError(host, `probe field ${k}`, v)
    return Number(v)
  }
  // KiB from df, multiplied here: awk prints large products as 8.5e+10.
  const kib = (k: string) => {
    const n = num(k)
    return n === undefined ? undefined : n * 1024
  }
  const flag = (k: string) => kv.get(k) === '1'
  const path = (k: string) => {
    const v = kv.get(k) || undefined
    if (v !== undefined && !isSafeAbsolutePath(v)) throw new HostDataError(host, `probe field ${k}`, v)
    return v
  }
  const toolVersions: Record<string, string> = {}
  for (const t of ['etcd', 'etcdctl', 'etcdutl']) {
    const v = parseVersion(kv.get(`version.${t}`) ?? '')
    if (v) toolVersions[t] = v.text
  }
  const sha = kv.get('snap.sha') || undefined
  if (sha !== undefined && !SHA256_RE.test(sha)) throw new HostDataError(host, 'probe field snap.sha', sha)
  const pids = (kv.get('pids') ?? '').split(/\s+/).filter(Boolean).map((p) => {
    if (!isPid(Number(p))) throw new HostDataError(host, 'probe field pids', p)
    return Number(p)
  })
  const uid = num('uid')
  const unitState = parseUnitState(unitLines)
  // The host's clock, which its certificates are judged by.
  const hostNow = num('now')
  if (uid === undefined) throw new HostDataError(host, 'probe field uid', kv.get('uid') ?? '(missing)', 'The probe script did not run to its end on this host: is /bin/sh a POSIX shell there?')
  return {
    uid,
    hostname: kv.get('hostname') ?? '',
    bins: { etcd: path('bin.etcd'), etcdctl: path('bin.etcdctl'), etcdutl: path('bin.etcdutl') },
    version: parseVersion(kv.get('version.etcd') ?? ''),
    toolVersions,
    dataDir: {
      exists: flag('data.exists'),
      entries: num('data.entries') ?? 0,
      hasMember: flag('data.member'),
      mountpoint: flag('data.mountpoint'),
      freeBytes: kib('data.free_kib'),
    },
    parent: { exists: flag('parent.exists'), writable: flag('parent.writable'), freeBytes: kib('parent.free_kib'), partsBytes: kib('parent.parts_kib') },
    snapshot: { size: num('snap.size'), sha256: sha },
    restored: parseStateFile(stateLines, host, stateFile).restored,
    pids,
    listeners: parseListeners(listenLines),
    staleRestores: staleLines.map((l) => {
      const m = /^(\d+) (\/.*)$/.exec(l)
      if (!m || !isSafeAbsolutePath(m[2])) throw new HostDataError(host, 'probe field stale.restore', l)
      return { path: m[2], bytes: Number(m[1]) * 1024 }
    }),
    has: { sha256sum: flag('has.sha256sum'), setsid: flag('has.setsid'), systemctl: flag('has.systemctl') },
    unit: unitState && { ...unitState, held: flag('unit.held') },
    unitConfig: parseUnitLines(unitLines, hostNow),
    etcdUser: userName ? { name: userName, exists: flag('etcduser.exists') } : undefined,
    tls: etcdctlTls(tlsLines, hostNow),
  }
}

/** etcdctl's files: its certificate and key (tls.), and its CA (tlsca.), a bundle of which is not judged by its first. */
function etcdctlTls(lines: readonly string[], hostNow: number | undefined): TlsFileState {
  const own = parseTlsLines(lines, 'tls.', hostNow)
  const ca = parseTlsLines(lines, 'tlsca.', hostNow)
  return {
    missing: [...own.missing, ...ca.missing],
    unreadable: [...own.unreadable, ...ca.unreadable],
    notFile: [...own.notFile, ...ca.notFile],
    expired: [...own.expired, ...ca.expired.filter((e) => expiredInRole(e, 'ca'))],
  }
}

/**
 * ss -ltnp lines: the local address's port and each process in users:((...)).
 * A line without users (ss run without the right to see them) tells nothing.
 */
export function parseListeners(lines: readonly string[]): HostFacts['listeners'] {
  const out: HostFacts['listeners'] = []
  for (const line of lines) {
    const local = line.trim().split(/\s+/)[3] ?? ''
    const colon = local.lastIndexOf(':')
    const port = Number(local.slice(colon + 1))
    if (colon <= 0 || !Number.isInteger(port) || port <= 0) continue
    // [::]:2379, 198.18.0.1:2379, *:2379, or with a %interface.
    const address = local.slice(0, colon).replace(/%.*$/, '').replace(/^\[(.*)\]$/, '$1')
    for (const m of line.matchAll(/\("([^"]*)",pid=(\d+)/g)) out.push({ address, port, comm: m[1], pid: Number(m[2]) })
  }
  return out
}

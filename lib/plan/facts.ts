// What preflight learns about a member host, from one read-only probe script
// run over SSH (one round trip per host). The script prints key=value lines;
// parsing them is pure and unit-tested.
import { quote } from '../shell/quote.ts'
import { findPidsScript } from '../etcd/process.ts'
import { HASH_FILE } from './scripts.ts'
import { parseVersion, type EtcdVersion } from '../etcd/version.ts'

export interface ProbeInput {
  dataDir: string
  binDir?: string
  work: string
  /** Remote path the snapshot would have; its hash is read only when the size matches. */
  snapshot: string
  snapshotSize: number
  ports: number[]
  service: 'systemd' | 'process'
  serviceName: string
}

export interface HostFacts {
  uid: number
  hostname: string
  bins: { etcd?: string; etcdctl?: string; etcdutl?: string }
  version?: EtcdVersion
  /** Versions each tool reported, to catch a mixed install. */
  toolVersions: Record<string, string>
  dataDir: { exists: boolean; entries: number; hasMember: boolean; mountpoint: boolean; freeBytes?: number }
  parent: { exists: boolean; writable: boolean; freeBytes?: number }
  snapshot: { size?: number; sha256?: string }
  /** An interrupted run's restore: the journal's last line is `restored SHA TOKEN` (not yet `complete`). */
  restored?: { sha256: string; token: string }
  pids: number[]
  has: { sha256sum: boolean; setsid: boolean; systemctl: boolean }
  unit?: { exists: boolean; active: string }
}

/**
 * Where an etcd tool is on a host: in $BINDIR when the inventory names one
 * (etcd_bin_dir), else on PATH, else in /usr/local/bin. Prints nothing if absent.
 */
export const FIND_BIN = `find_bin() {
  if [ -n "$BINDIR" ]; then [ -x "$BINDIR/$1" ] && echo "$BINDIR/$1"; return 0; fi
  command -v "$1" 2>/dev/null || { [ -x "/usr/local/bin/$1" ] && echo "/usr/local/bin/$1"; } || true
}`

export function probeScript(p: ProbeInput): string {
  return `
${HASH_FILE}
D=${quote(p.dataDir)}; W=${quote(p.work)}; S=${quote(p.snapshot)}; BINDIR=${quote(p.binDir ?? '')}
P=$(dirname "$D")
echo "uid=$(id -u)"
echo "hostname=$(hostname 2>/dev/null || cat /etc/hostname)"
${FIND_BIN}
E=$(find_bin etcd); C=$(find_bin etcdctl); U=$(find_bin etcdutl)
echo "bin.etcd=$E"; echo "bin.etcdctl=$C"; echo "bin.etcdutl=$U"
[ -n "$E" ] && echo "version.etcd=$("$E" --version 2>&1 | head -n 1)"
[ -n "$C" ] && echo "version.etcdctl=$(ETCDCTL_API=3 "$C" version 2>&1 | head -n 1)"
[ -n "$U" ] && echo "version.etcdutl=$("$U" version 2>&1 | head -n 1)"
if [ -d "$D" ]; then
  echo "data.exists=1"
  echo "data.entries=$(ls -A "$D" 2>/dev/null | grep -v -e '^lost+found$' -e '^etcd-rescue-old-' | wc -l)"
  [ -d "$D/member" ] && echo "data.member=1"
  if awk -v d="$D" '$5 == d { f = 1 } END { exit !f }' /proc/self/mountinfo 2>/dev/null; then
    echo "data.mountpoint=1"
    echo "data.free=$(df -Pk "$D" | awk 'NR == 2 { print $4 * 1024 }')"
  fi
fi
if [ -d "$P" ]; then
  echo "parent.exists=1"
  [ -w "$P" ] && echo "parent.writable=1"
  echo "parent.free=$(df -Pk "$P" | awk 'NR == 2 { print $4 * 1024 }')"
fi
if [ -f "$S" ]; then
  sz=$(wc -c < "$S" | tr -d ' ')
  echo "snap.size=$sz"
  [ "$sz" = ${p.snapshotSize} ] && echo "snap.sha=$(hash_file "$S")"
fi
# Only a restore not yet marked complete is resumable.
[ -f "$W/state" ] && echo "state.restored=$(grep -E '^(restored|complete) ' "$W/state" | tail -n 1 | sed -n 's/^restored //p')"
echo "pids=$( { ${findPidsScript(p.dataDir, p.ports)}
} | tr '\\n' ' ')"
command -v sha256sum >/dev/null 2>&1 && echo has.sha256sum=1
command -v setsid >/dev/null 2>&1 && echo has.setsid=1
command -v systemctl >/dev/null 2>&1 && echo has.systemctl=1
${p.service === 'systemd' ? `if command -v systemctl >/dev/null 2>&1; then
  systemctl cat ${quote(p.serviceName)} >/dev/null 2>&1 && echo unit.exists=1
  echo "unit.active=$(systemctl is-active ${quote(p.serviceName)} 2>/dev/null)"
fi` : ''}
true
`
}

export function parseFacts(output: string): HostFacts {
  const kv = new Map<string, string>()
  for (const line of output.split('\n')) {
    const i = line.indexOf('=')
    if (i > 0) kv.set(line.slice(0, i), line.slice(i + 1).trim())
  }
  const num = (k: string) => (kv.get(k) ? Number(kv.get(k)) : undefined)
  const flag = (k: string) => kv.get(k) === '1'
  const opt = (k: string) => kv.get(k) || undefined
  const toolVersions: Record<string, string> = {}
  for (const t of ['etcd', 'etcdctl', 'etcdutl']) {
    const v = parseVersion(kv.get(`version.${t}`) ?? '')
    if (v) toolVersions[t] = v.text
  }
  const restored = kv.get('state.restored')?.split(' ')
  return {
    uid: Number(kv.get('uid') ?? NaN),
    hostname: kv.get('hostname') ?? '',
    bins: { etcd: opt('bin.etcd'), etcdctl: opt('bin.etcdctl'), etcdutl: opt('bin.etcdutl') },
    version: parseVersion(kv.get('version.etcd') ?? ''),
    toolVersions,
    dataDir: {
      exists: flag('data.exists'),
      entries: num('data.entries') ?? 0,
      hasMember: flag('data.member'),
      mountpoint: flag('data.mountpoint'),
      freeBytes: num('data.free'),
    },
    parent: { exists: flag('parent.exists'), writable: flag('parent.writable'), freeBytes: num('parent.free') },
    snapshot: { size: num('snap.size'), sha256: opt('snap.sha') },
    restored: restored && restored.length === 2 ? { sha256: restored[0], token: restored[1] } : undefined,
    pids: (kv.get('pids') ?? '').split(/\s+/).filter(Boolean).map(Number),
    has: { sha256sum: flag('has.sha256sum'), setsid: flag('has.setsid'), systemctl: flag('has.systemctl') },
    unit: kv.has('unit.active') ? { exists: flag('unit.exists'), active: kv.get('unit.active') ?? '' } : undefined,
  }
}

// Running etcd as a plain process (etcd_service: process): hosts with no service
// manager, like the lab's. Start and find commands are built here, as argv through
// the POSIX quoting function, so the lab, recover and drills start etcd one way.
import { sh, type Script } from '../shell/sh.ts'

/** What it takes to run one member as a process. */
export interface EtcdProcessSpec {
  /** Path of the etcd binary on the host. */
  etcdBin: string
  name: string
  dataDir: string
  peerUrl: string
  clientUrl: string
  /** Where etcd's output goes; default /var/log/etcd-rescue/NAME.log. */
  logFile?: string
  /** Only when creating a brand-new cluster (the lab); a restored data dir ignores these. */
  bootstrap?: { initialCluster: string; token: string }
}

export function defaultLogFile(name: string): string {
  return `/var/log/etcd-rescue/${name}.log`
}

/**
 * etcd cannot bind to a host name, only to an IP: listen on the URL's own
 * address when it is an IP literal, else on every address at that port.
 */
export function listenUrl(url: string): string {
  const u = new URL(url)
  const host = u.hostname
  const isIp = /^\d+\.\d+\.\d+\.\d+$/.test(host) || host.startsWith('[')
  return `${u.protocol}//${isIp ? host : '0.0.0.0'}:${u.port}`
}

export function etcdArgs(spec: EtcdProcessSpec): string[] {
  const clientPort = new URL(spec.clientUrl).port
  const clientListen = [listenUrl(spec.clientUrl)]
  // Local etcdctl and health checks on the host itself use loopback.
  const local = `${new URL(spec.clientUrl).protocol}//127.0.0.1:${clientPort}`
  if (!clientListen.includes(local) && !clientListen[0].includes('0.0.0.0')) clientListen.push(local)
  const args = [
    spec.etcdBin,
    '--name', spec.name,
    '--data-dir', spec.dataDir,
    '--listen-peer-urls', listenUrl(spec.peerUrl),
    '--initial-advertise-peer-urls', spec.peerUrl,
    '--listen-client-urls', clientListen.join(','),
    '--advertise-client-urls', spec.clientUrl,
  ]
  if (spec.bootstrap) {
    args.push(
      '--initial-cluster', spec.bootstrap.initialCluster,
      '--initial-cluster-token', spec.bootstrap.token,
      '--initial-cluster-state', 'new',
    )
  }
  return args
}

/**
 * A shell command that starts etcd detached and returns at once. setsid -f
 * with all three descriptors redirected: a daemon that keeps the SSH channel's
 * descriptors holds the session open (FIELD-NOTES pitfall 4).
 */
export function startCommand(spec: EtcdProcessSpec): Script {
  const log = spec.logFile ?? defaultLogFile(spec.name)
  const logDir = log.slice(0, log.lastIndexOf('/')) || '/'
  return sh`mkdir -p ${logDir} && setsid -f ${etcdArgs(spec)} >>${log} 2>&1 </dev/null`
}

/**
 * A shell script that prints the PIDs (one a line) of the etcd processes that
 * belong to this member: argv[0] is etcd and either its data dir is the member's
 * or it listens on the member's peer or client port. Another etcd on the same
 * host (an events cluster) does not match. Matching on argv[0], not on the whole
 * command line, keeps the script's own shell out (FIELD-NOTES pitfall 3).
 */
export function findPidsScript(dataDir: string, ports: number[]): Script {
  for (const p of ports) if (!Number.isInteger(p) || p < 1 || p > 65535) throw new TypeError(`not a port: ${p}`)
  const portsRe = ports.map((p) => `:${p}`).join('|')
  return sh`
dd=${dataDir}; ports_re=${`(${portsRe}) `}
for p in /proc/[0-9]*; do
  pid=\${p#/proc/}
  [ "$pid" = "$$" ] && continue
  # comm first: a builtin read, no fork per process on busy hosts. Redirect
  # stderr before opening: a process may exit during the scan.
  read -r comm 2>/dev/null < "$p/comm" || continue
  [ "$comm" = etcd ] || continue
  args=$(tr '\\000' '\\n' 2>/dev/null < "$p/cmdline")
  [ -n "$args" ] || continue
  a0=$(printf '%s\\n' "$args" | head -n 1)
  case "\${a0##*/}" in etcd) ;; *) continue ;; esac
  d=$(printf '%s\\n' "$args" | sed -n -e '/^--data-dir=/{s/^--data-dir=//;p;}' -e '/^--data-dir$/{n;p;}' | head -n 1)
  [ -z "$d" ] && d=$(tr '\\000' '\\n' 2>/dev/null < "$p/environ" | sed -n 's/^ETCD_DATA_DIR=//p' | head -n 1)
  if [ -n "$d" ] && [ "\${d%/}" = "\${dd%/}" ]; then echo "$pid"; continue; fi
  # (ss of CentOS 7.0-7.3 has no -H; its header line matches no pid.)
  if command -v ss >/dev/null 2>&1 && { ss -Hltnp 2>/dev/null || ss -ltnp 2>/dev/null; } | grep -E "$ports_re" | grep -q "pid=$pid,"; then echo "$pid"; fi
done
true`
}

// The client certificates etcdctl needs on a member's host when the cluster
// speaks TLS (FIELD-NOTES pitfalls 9 and 10). Explicit files win; otherwise
// kubespray's layout under etcd_cert_dir: ca.pem, admin-HOST.pem, admin-HOST-key.pem.
import type { TlsFiles } from './etcdctl.ts'
import type { GatewayTls } from './gateway.ts'
import { sh, type Script } from '../shell/sh.ts'
import type { ExecOptions, ExecResult } from '../ssh/connection.ts'

export interface TlsSource {
  inventoryHost: string
  clientUrl: string
  vars: Record<string, unknown>
}

export function tlsFor(m: TlsSource): TlsFiles | undefined {
  const get = (k: string) => (typeof m.vars[k] === 'string' && m.vars[k] ? (m.vars[k] as string) : undefined)
  const dir = get('etcd_cert_dir') ?? (m.clientUrl.startsWith('https:') ? '/etc/ssl/etcd/ssl' : undefined)
  const tls: TlsFiles = {
    cacert: get('etcd_ca_file') ?? (dir && `${dir}/ca.pem`),
    cert: get('etcd_cert_file') ?? (dir && `${dir}/admin-${m.inventoryHost}.pem`),
    key: get('etcd_key_file') ?? (dir && `${dir}/admin-${m.inventoryHost}-key.pem`),
  }
  return tls.cacert || tls.cert || tls.key ? tls : undefined
}

/** What reads the files: a host that runs a command (an SSH connection, or a persistent session on it). */
export interface CommandRunner {
  exec(script: Script, options?: ExecOptions): Promise<ExecResult>
}

const TLS_KEYS = [['cacert', 'ca'], ['cert', 'cert'], ['key', 'key']] as const

/**
 * The CA, client certificate and key a member's etcdctl uses, read off its host
 * in one remote command (through sudo when the target says become: the key is
 * usually root's). Each file comes back base64 on lines of its own, ended by a
 * line `.` (no base64 character), so PEM bundles and any bytes survive. The
 * contents stay in memory: never written, and never part of an error (a failure
 * names the host's stderr only, which speaks of paths).
 */
export async function readTlsFiles(host: CommandRunner, files: TlsFiles): Promise<GatewayTls> {
  const wanted = TLS_KEYS.filter(([k]) => files[k])
  if (!wanted.length) return {}
  const r = await host.exec(sh`for f in ${wanted.map(([k]) => files[k]!)}; do base64 < "$f" || exit 1; echo .; done`, { allowFailure: true, timeoutMs: 30_000 })
  const parts = r.stdout.split(/^\.$/m)
  if (r.code !== 0 || parts.length !== wanted.length + 1) {
    throw new Error(`cannot read the TLS files ${wanted.map(([k]) => files[k]).join(', ')}: ${r.stderr.trim().split('\n').pop() || `exit ${r.code ?? r.signal}`}`)
  }
  return Object.fromEntries(wanted.map(([, out], i) => [out, Buffer.from(parts[i].replace(/\s+/g, ''), 'base64')]))
}

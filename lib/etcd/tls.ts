// The client certificates etcdctl needs on a member's host when the cluster
// speaks TLS (FIELD-NOTES pitfalls 9 and 10). Explicit files win; otherwise
// kubespray's layout under etcd_cert_dir: ca.pem, admin-HOST.pem, admin-HOST-key.pem.
import type { TlsFiles } from './etcdctl.ts'

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

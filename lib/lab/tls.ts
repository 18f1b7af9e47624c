// A lab's etcd PKI, made with openssl in kubespray's layout (roles/etcd, gen_certs):
// one CA, and per host member-HOST (peer and server), admin-HOST (what etcdctl and
// operators use) and node-HOST (what a Kubernetes node would use), each with the
// host's address, name and loopback as SANs and both serverAuth and clientAuth,
// as kubespray's openssl.conf gives them. EC P-256: quick to make, etcd takes it.
// Random serials (not -CAcreateserial): certificates are signed in parallel.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { run } from './exec.ts'

/** kubespray's etcd_cert_dir. */
export const KUBESPRAY_CERT_DIR = '/etc/ssl/etcd/ssl'

export interface TlsHost {
  /** Inventory host name: the HOST of member-HOST.pem. */
  name: string
  address: string
}

/** File names (relative to the cert dir) a host gets for itself: kubespray's names. */
export function hostCertFiles(host: string): string[] {
  return ['ca.pem', ...['member', 'admin', 'node'].flatMap((kind) => [`${kind}-${host}.pem`, `${kind}-${host}-key.pem`])]
}

/** Make the CA and every host's certificates under `dir` (a directory on the machine). */
export async function makeLabPki(dir: string, hosts: readonly TlsHost[]): Promise<void> {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const ca = join(dir, 'ca.pem')
  const caKey = join(dir, 'ca-key.pem')
  await run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', caKey, '-out', ca, '-days', '3650', '-subj', '/CN=etcd-ca', '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign'])
  await Promise.all(hosts.flatMap((h) => ['member', 'admin', 'node'].map(async (kind) => {
    const base = join(dir, `${kind}-${h.name}`)
    const ext = `${base}.ext`
    writeFileSync(ext, [
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth,clientAuth',
      `subjectAltName=DNS:${h.name},DNS:localhost,IP:${h.address},IP:127.0.0.1`,
      '',
    ].join('\n'))
    await run(['openssl', 'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', `${base}-key.pem`, '-out', `${base}.csr`, '-subj', `/CN=etcd-${kind}-${h.name}`])
    await run(['openssl', 'x509', '-req', '-in', `${base}.csr`, '-CA', ca, '-CAkey', caKey, '-set_serial', `0x${randomBytes(8).toString('hex')}`,
      '-out', `${base}.pem`, '-days', '3650', '-extfile', ext])
  })))
}

// etcd installed on a systemd lab host the way kubespray installs it (roles/etcd,
// etcd_deployment_type: host): binaries in /usr/local/bin, /etc/etcd.env with the
// member's whole configuration as ETCD_* variables, and etcd.service reading it.
// Pure text, so it is unit-tested.
import { KUBESPRAY_CERT_DIR } from './tls.ts'

export const ETCD_ENV_PATH = '/etc/etcd.env'
export const ETCD_UNIT_PATH = '/etc/systemd/system/etcd.service'
export const KUBESPRAY_BIN_DIR = '/usr/local/bin'

export interface EtcdEnvHost {
  /** Inventory host name (member-HOST.pem). */
  name: string
  /** etcd member name (etcd1..etcdN). */
  member: string
  address: string
}

export interface EtcdEnvSpec {
  self: EtcdEnvHost
  all: readonly EtcdEnvHost[]
  dataDir: string
  tls: boolean
  token: string
}

/** /etc/etcd.env as kubespray's etcd.env.j2 writes it (the settings that matter here). */
export function etcdEnv(spec: EtcdEnvSpec): string {
  const scheme = spec.tls ? 'https' : 'http'
  const url = (address: string, port: number) => `${scheme}://${address}:${port}`
  const { self } = spec
  const lines = [
    '# Environment file for etcd, as kubespray writes it',
    `ETCD_DATA_DIR=${spec.dataDir}`,
    `ETCD_ADVERTISE_CLIENT_URLS=${url(self.address, 2379)}`,
    `ETCD_INITIAL_ADVERTISE_PEER_URLS=${url(self.address, 2380)}`,
    'ETCD_INITIAL_CLUSTER_STATE=new',
    'ETCD_METRICS=basic',
    `ETCD_LISTEN_CLIENT_URLS=${url(self.address, 2379)},${url('127.0.0.1', 2379)}`,
    'ETCD_ELECTION_TIMEOUT=5000',
    'ETCD_HEARTBEAT_INTERVAL=250',
    `ETCD_INITIAL_CLUSTER_TOKEN=${spec.token}`,
    `ETCD_LISTEN_PEER_URLS=${url(self.address, 2380)}`,
    `ETCD_NAME=${self.member}`,
    `ETCD_INITIAL_CLUSTER=${spec.all.map((h) => `${h.member}=${url(h.address, 2380)}`).join(',')}`,
    'ETCD_AUTO_COMPACTION_RETENTION=8',
    'ETCD_SNAPSHOT_COUNT=10000',
  ]
  if (spec.tls) {
    const d = KUBESPRAY_CERT_DIR
    lines.push(
      '',
      '# TLS settings',
      `ETCD_TRUSTED_CA_FILE=${d}/ca.pem`,
      `ETCD_CERT_FILE=${d}/member-${self.name}.pem`,
      `ETCD_KEY_FILE=${d}/member-${self.name}-key.pem`,
      'ETCD_CLIENT_CERT_AUTH=true',
      '',
      `ETCD_PEER_TRUSTED_CA_FILE=${d}/ca.pem`,
      `ETCD_PEER_CERT_FILE=${d}/member-${self.name}.pem`,
      `ETCD_PEER_KEY_FILE=${d}/member-${self.name}-key.pem`,
      'ETCD_PEER_CLIENT_CERT_AUTH=True',
    )
  }
  return `${lines.join('\n')}\n`
}

export interface EtcdUnitSpec {
  /** Restart= of the unit. kubespray ships always; a common hand-made unit says on-failure. */
  restart: 'on-failure' | 'always'
  user: string
}

/** etcd.service as kubespray's etcd-host.service.j2, with User= and Restart= as asked. */
export function etcdUnit(spec: EtcdUnitSpec): string {
  return [
    '[Unit]',
    'Description=etcd',
    'After=network.target',
    '',
    '[Service]',
    'Type=notify',
    `User=${spec.user}`,
    `EnvironmentFile=${ETCD_ENV_PATH}`,
    `ExecStart=${KUBESPRAY_BIN_DIR}/etcd`,
    'NotifyAccess=all',
    `Restart=${spec.restart}`,
    'RestartSec=10s',
    'LimitNOFILE=40000',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n')
}

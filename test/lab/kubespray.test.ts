import { describe, expect, it } from 'vitest'
import { etcdEnv, etcdUnit } from '../../lib/lab/kubespray-etcd.ts'
import { KUBESPRAY_INVENTORY_FILES, renderKubesprayInventory } from '../../lib/lab/kubespray-inventory.ts'
import { hostCertFiles } from '../../lib/lab/tls.ts'
import { parseEnvLine } from '../../lib/plan/unit.ts'

const hosts = [
  { name: 'l-h1', member: 'etcd1', address: '198.18.1.11' },
  { name: 'l-h2', member: 'etcd2', address: '198.18.1.12' },
]

describe('etcd as kubespray installs it on a systemd lab host', () => {
  it('writes /etc/etcd.env with https URLs and kubespray\'s certificate names', () => {
    const env = Object.fromEntries(etcdEnv({ self: hosts[1], all: hosts, dataDir: '/var/lib/etcd', tls: true, token: 't' })
      .split('\n').map(parseEnvLine).filter((kv): kv is [string, string] => !!kv))
    expect(env).toMatchObject({
      ETCD_NAME: 'etcd2',
      ETCD_DATA_DIR: '/var/lib/etcd',
      ETCD_INITIAL_ADVERTISE_PEER_URLS: 'https://198.18.1.12:2380',
      ETCD_INITIAL_CLUSTER: 'etcd1=https://198.18.1.11:2380,etcd2=https://198.18.1.12:2380',
      ETCD_CERT_FILE: '/etc/ssl/etcd/ssl/member-l-h2.pem',
      ETCD_CLIENT_CERT_AUTH: 'true',
    })
  })

  it('runs etcd.service as the given user with the given Restart=', () => {
    const unit = etcdUnit({ restart: 'always', user: 'etcd' })
    expect(unit).toContain('\nUser=etcd\n')
    expect(unit).toContain('\nRestart=always\n')
    expect(unit).toContain('\nEnvironmentFile=/etc/etcd.env\n')
    expect(unit).toContain('\nType=notify\n')
  })

  it('names certificates as kubespray does', () => {
    expect(hostCertFiles('n1')).toEqual(['ca.pem', 'member-n1.pem', 'member-n1-key.pem', 'admin-n1.pem', 'admin-n1-key.pem', 'node-n1.pem', 'node-n1-key.pem'])
  })

  it('writes an inventory with no etcd_* variable, reaching hosts as a sudo user', () => {
    const files = renderKubesprayInventory({ lab: 'l', etcdVersion: '3.5.30', hosts, user: 'ops', privateKey: '/k', knownHosts: '/kh' })
    expect(Object.keys(files).sort()).toEqual([...KUBESPRAY_INVENTORY_FILES].sort())
    expect(Object.values(files).join('\n')).not.toMatch(/etcd_/)
    expect(files['group_vars/all/all.yml']).toContain('ansible_become: true')
    expect(files['inventory.ini']).toContain('[etcd]\nl-h1\nl-h2\n')
  })
})

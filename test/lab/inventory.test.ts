import { describe, expect, it } from 'vitest'
import { renderInventory } from '../../lib/lab/inventory.ts'

describe('renderInventory', () => {
  it('writes the etcd group with connection vars per host and the etcd layout as group vars', () => {
    const text = renderInventory({
      lab: 'lab',
      etcdVersion: '3.5.30',
      hosts: [
        { name: 'lab-h1', address: '198.18.1.11', member: 'etcd1' },
        { name: 'lab-h2', address: '198.18.1.12', member: 'etcd2' },
      ],
      privateKey: '/r/.lab/lab/id_ed25519',
      knownHosts: '/r/.lab/lab/known_hosts',
      etcdBinDir: '/usr/local/bin',
      dataDir: '/var/lib/etcd',
    })
    expect(text).toBe(`# Lab "lab" (etcd 3.5.30), written by etcd-rescue lab up; rewritten by every up.
[etcd]
lab-h1 ansible_host=198.18.1.11 ansible_user=root ansible_ssh_private_key_file=/r/.lab/lab/id_ed25519 ansible_ssh_common_args='-o UserKnownHostsFile=/r/.lab/lab/known_hosts -o StrictHostKeyChecking=yes' etcd_member_name=etcd1
lab-h2 ansible_host=198.18.1.12 ansible_user=root ansible_ssh_private_key_file=/r/.lab/lab/id_ed25519 ansible_ssh_common_args='-o UserKnownHostsFile=/r/.lab/lab/known_hosts -o StrictHostKeyChecking=yes' etcd_member_name=etcd2

[etcd:vars]
etcd_service=process
etcd_data_dir=/var/lib/etcd
etcd_bin_dir=/usr/local/bin
etcd_version=3.5.30
`)
  })
})

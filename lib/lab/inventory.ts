// The Ansible INI inventory `up` writes: the lab's hosts in the group `etcd`,
// connection variables on each host line (what an operator's kubespray inventory
// has), the etcd layout in [etcd:vars]. `recover` reads it like any other.
// Values are plain (paths are checked to need no quoting, see paths.ts) except
// ansible_ssh_common_args, single-quoted because it holds spaces; Ansible splits
// host lines like a shell.

export interface InventoryHost {
  name: string
  address: string
  member: string
}

export interface InventorySpec {
  lab: string
  etcdVersion: string
  hosts: readonly InventoryHost[]
  privateKey: string
  knownHosts: string
  etcdBinDir: string
  dataDir: string
}

export function renderInventory(spec: InventorySpec): string {
  const common = `-o UserKnownHostsFile=${spec.knownHosts} -o StrictHostKeyChecking=yes`
  const lines = [
    `# Lab "${spec.lab}" (etcd ${spec.etcdVersion}), written by etcd-rescue lab up; rewritten by every up.`,
    '[etcd]',
    ...spec.hosts.map((h) => [
      h.name,
      `ansible_host=${h.address}`,
      'ansible_user=root',
      `ansible_ssh_private_key_file=${spec.privateKey}`,
      `ansible_ssh_common_args='${common}'`,
      // Explicit: kubespray would otherwise derive etcd1..N from the group order.
      `etcd_member_name=${h.member}`,
    ].join(' ')),
    '',
    '[etcd:vars]',
    'etcd_service=process',
    `etcd_data_dir=${spec.dataDir}`,
    `etcd_bin_dir=${spec.etcdBinDir}`,
    `etcd_version=${spec.etcdVersion}`,
    '',
  ]
  return lines.join('\n')
}

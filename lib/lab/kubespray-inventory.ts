// The inventory a systemd lab writes: shaped like kubespray's sample
// (inventory/sample/inventory.ini + group_vars/), hosts reached as the login user
// with ansible_become, and no etcd_* variable at all, as kubespray users have it:
// etcd-rescue has to find the rest (https URLs on `ip`, the cert dir, the unit,
// its user) from kubespray's defaults and the hosts themselves.

/** Every file renderKubesprayInventory writes, relative to the lab directory (down removes exactly these). */
export const KUBESPRAY_INVENTORY_FILES = ['inventory.ini', 'group_vars/all/all.yml', 'group_vars/k8s_cluster/k8s-cluster.yml'] as const

export interface KubesprayInventorySpec {
  lab: string
  etcdVersion: string
  hosts: ReadonlyArray<{ name: string; address: string }>
  user: string
  privateKey: string
  knownHosts: string
}

/** Files relative to the lab directory → their text. */
export function renderKubesprayInventory(spec: KubesprayInventorySpec): Record<string, string> {
  const hostLines = spec.hosts.map((h) => `${h.name} ansible_host=${h.address} ip=${h.address}`)
  const names = spec.hosts.map((h) => h.name)
  const ini = [
    `# Lab "${spec.lab}" (etcd ${spec.etcdVersion}, systemd), written by etcd-rescue lab up; rewritten by every up.`,
    '[all]',
    ...hostLines,
    '',
    '[kube_control_plane]',
    ...names,
    '',
    '[etcd]',
    ...names,
    '',
    '[kube_node]',
    ...names,
    '',
    '[calico_rr]',
    '',
    '[k8s_cluster:children]',
    'kube_control_plane',
    'kube_node',
    'calico_rr',
    '',
  ].join('\n')
  const all = [
    '# Connection: as an operator reaches kubespray hosts (a sudo user, not root).',
    `ansible_user: ${spec.user}`,
    'ansible_become: true',
    `ansible_ssh_private_key_file: ${spec.privateKey}`,
    `ansible_ssh_common_args: "-o UserKnownHostsFile=${spec.knownHosts} -o StrictHostKeyChecking=yes"`,
    '',
  ].join('\n')
  const k8s = ['kube_version: v1.30.4', 'container_manager: containerd', ''].join('\n')
  return {
    'inventory.ini': ini,
    'group_vars/all/all.yml': all,
    'group_vars/k8s_cluster/k8s-cluster.yml': k8s,
  }
}

// Kubernetes clients watch etcd by revision. After a restore the revision goes
// back to the snapshot's; a watcher that saw later revisions then waits for
// events that will never come, or serves stale state. --bump-revision with
// --mark-compacted moves the revision past anything clients saw and compacts
// the old ones, so every watch fails with "compacted" and relists (etcd's
// disaster-recovery guide; etcd-io/etcd#16028, kubernetes/kubernetes#118501).
import type { Inventory } from '../inventory/members.ts'

/** kubespray's groups: their presence means the etcd serves a Kubernetes cluster. */
export const KUBESPRAY_GROUPS = ['kube_control_plane', 'kube_node', 'k8s_cluster'] as const

/** The advice for a Kubernetes inventory restored without --bump-revision, or undefined. */
export function kubernetesAdvice(inv: Pick<Inventory, 'groups'>, bumpRevision?: number): string | undefined {
  const found = KUBESPRAY_GROUPS.filter((g) => inv.groups.has(g))
  if (!found.length || bumpRevision) return undefined
  return `this inventory serves Kubernetes (groups ${found.join(', ')}): pass --bump-revision 1000000000 (etcd-rescue adds --mark-compacted; etcd >= 3.4.27 / 3.5.10). Without it the revision goes back to the snapshot's and watchers (kube-apiserver caches, controllers, kubelets) may serve stale state; with it every watch relists. Then restart every kube-apiserver, controller-manager, scheduler and kubelet.`
}

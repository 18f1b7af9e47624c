import { describe, expect, it } from 'vitest'
import { loadInventory } from '../../lib/inventory/members.ts'
import { kubernetesAdvice } from '../../lib/plan/kubernetes.ts'

const fixture = (p: string) => new URL(`../fixtures/inventory/${p}`, import.meta.url).pathname

describe('kubernetesAdvice', () => {
  it('recommends --bump-revision with --mark-compacted for a kubespray inventory, saying why', () => {
    const advice = kubernetesAdvice(loadInventory(fixture('kubespray/inventory.ini')))
    expect(advice).toMatch(/groups kube_control_plane, kube_node, k8s_cluster/)
    expect(advice).toMatch(/--bump-revision 1000000000 \(etcd-rescue adds --mark-compacted/)
    expect(advice).toMatch(/watchers .* stale state; with it every watch relists/)
  })

  it('is quiet once the revision is bumped, and for a plain etcd inventory', () => {
    expect(kubernetesAdvice(loadInventory(fixture('kubespray/inventory.ini')), 1_000_000_000)).toBeUndefined()
    expect(kubernetesAdvice(loadInventory(fixture('basic/hosts.ini')))).toBeUndefined()
  })

  it('reads the YAML layout too', () => {
    expect(kubernetesAdvice(loadInventory(fixture('kubespray-yaml/hosts.yaml')))).toMatch(/kube_control_plane/)
  })
})

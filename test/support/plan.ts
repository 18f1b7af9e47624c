// A recovery plan for three members that need no host: what unit tests of the
// quorum wait and the verdict judge recovered clusters against.
import { buildPlan, type RecoveryPlan } from '../../lib/plan/recovery.ts'
import { parseVersion } from '../../lib/etcd/version.ts'
import type { HostFacts } from '../../lib/plan/facts.ts'
import type { Member } from '../../lib/inventory/members.ts'

/** etcd1..3 at 10.0.0.1..3, plain processes, every host on etcd `version`; token `tok`. */
export function threeMemberPlan(version: string): RecoveryPlan {
  const members = [1, 2, 3].map((i) => ({
    inventoryHost: `n${i}`, name: `etcd${i}`, address: `10.0.0.${i}`, peerUrl: `http://10.0.0.${i}:2380`, clientUrl: `http://10.0.0.${i}:2379`,
    dataDir: '/var/lib/etcd', service: 'process', serviceName: 'etcd', ssh: { host: `10.0.0.${i}`, port: 22, become: false }, vars: {},
  })) as Member[]
  const facts: HostFacts = {
    uid: 0, hostname: 'h', bins: { etcd: '/e', etcdctl: '/c' }, version: parseVersion(version), toolVersions: {},
    dataDir: { exists: true, entries: 1, hasMember: true, mountpoint: false }, parent: { exists: true, writable: true },
    snapshot: {}, pids: [], listeners: [], has: { sha256sum: true, setsid: true, systemctl: false },
  }
  return buildPlan(members, new Map(members.map((m) => [m.name, facts])), { path: 's', size: 1, sha256: 'x', hasTrailer: true, pageSize: 4096 }, { token: 'tok', stamp: 's' })
}

// The lab's API: hosts that look like separate machines (own network, PID,
// mount and UTS namespaces, copy-on-write root, real sshd), and a fresh etcd
// cluster on them. Used by scripts/lab.mjs, drills and end-to-end tests.
export { labUp, DEFAULT_DISK, DEFAULT_HOSTS, type Lab, type LabUpOptions } from './up.ts'
export { labDown, type LabDownOptions, type LabDownResult } from './down.ts'
export { labStatus, type HostStatus, type LabStatus, type LabStatusOptions } from './status.ts'
export { openLab, type LabRef, type OpenLab } from './open.ts'
export { sshExec, sshArgs, type SshExecOptions, type SshResult } from './ssh.ts'
export {
  clusterStart, clusterStop, clusterKill, clusterMembers, waitHealthy,
  type ClusterMember, type ClusterStartOptions, type ClusterStartResult, type ClusterStopOptions, type StoppedMember,
} from './cluster.ts'
export { clusterLoad, loadKey, loadValue, sha256Hex, type ClusterLoadOptions, type ClusterLoadResult } from './load.ts'
export { clientUrl, peerUrl, etcdHealth, CLIENT_PORT, PEER_PORT } from './etcd-http.ts'
export { ETCD_RELEASES, DEFAULT_ETCD_VERSION } from './etcd-release.ts'
export { DEFAULT_LAB_NAME, LAB_DATA_DIR, MAX_HOSTS } from './names.ts'
export type { LabState, HostState } from './state.ts'
export type { LabPaths } from './paths.ts'

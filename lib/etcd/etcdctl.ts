// etcdctl/etcdutl command lines and their JSON output. Commands are argv arrays
// (quoted once, by the caller, through the sh template in lib/shell/sh.ts).

export interface TlsFiles {
  cacert?: string
  cert?: string
  key?: string
}

/** Turns 64-bit integers into strings before JSON.parse so IDs keep every digit. */
export function parseJsonExact<T = unknown>(text: string): T {
  return JSON.parse(text.replace(/([:\[,]\s*)(-?\d{16,})(?=\s*[,}\]])/g, '$1"$2"')) as T
}

export function tlsArgs(tls: TlsFiles | undefined): string[] {
  if (!tls) return []
  const out: string[] = []
  if (tls.cacert) out.push(`--cacert=${tls.cacert}`)
  if (tls.cert) out.push(`--cert=${tls.cert}`)
  if (tls.key) out.push(`--key=${tls.key}`)
  return out
}

export interface RestoreSpec {
  tool: 'etcdctl' | 'etcdutl'
  bin: string
  snapshot: string
  name: string
  initialCluster: string
  token: string
  peerUrl: string
  dataDir: string
  skipHashCheck?: boolean
  bumpRevision?: number
}

/** argv for `snapshot restore`, including the env prefix etcdctl 3.4 needs. */
export function restoreArgv(s: RestoreSpec): string[] {
  const argv = s.tool === 'etcdctl' ? ['env', 'ETCDCTL_API=3', s.bin] : [s.bin]
  argv.push(
    'snapshot', 'restore', s.snapshot,
    '--name', s.name,
    '--initial-cluster', s.initialCluster,
    '--initial-cluster-token', s.token,
    '--initial-advertise-peer-urls', s.peerUrl,
    '--data-dir', s.dataDir,
  )
  if (s.skipHashCheck) argv.push('--skip-hash-check')
  if (s.bumpRevision) argv.push('--bump-revision', String(s.bumpRevision), '--mark-compacted')
  return argv
}

export function snapshotStatusArgv(tool: 'etcdctl' | 'etcdutl', bin: string, file: string): string[] {
  const argv = tool === 'etcdctl' ? ['env', 'ETCDCTL_API=3', bin] : [bin]
  return [...argv, 'snapshot', 'status', file, '-w', 'json']
}

/** An etcdctl call against one endpoint that fails fast instead of hanging. */
export function etcdctlArgv(bin: string, endpoint: string, tls: TlsFiles | undefined, args: string[], commandTimeout = '3s'): string[] {
  return ['env', 'ETCDCTL_API=3', bin, `--endpoints=${endpoint}`, '--dial-timeout=2s', `--command-timeout=${commandTimeout}`, ...tlsArgs(tls), ...args]
}

export interface SnapshotStatus {
  hash: number
  revision: number
  totalKey: number
  totalSize: number
}

export interface EndpointStatus {
  clusterId: string
  memberId: string
  revision: number
  raftTerm: number
  leader: string
  version: string
  dbSize: number
  errors: string[]
}

/** `endpoint status -w json` for one endpoint (3.4 and 3.5 print the same shape). */
export function parseEndpointStatus(text: string): EndpointStatus {
  type Raw = Array<{ Status: { header: Record<string, string>; leader: string; version: string; dbSize: string; errors?: string[] } }>
  const [first] = parseJsonExact<Raw>(text)
  const st = first.Status
  return {
    clusterId: String(st.header.cluster_id),
    memberId: String(st.header.member_id),
    revision: Number(st.header.revision),
    raftTerm: Number(st.header.raft_term),
    leader: String(st.leader),
    version: st.version,
    dbSize: Number(st.dbSize),
    errors: st.errors ?? [],
  }
}

export interface ListedMember {
  id: string
  name: string
  peerUrls: string[]
  clientUrls: string[]
}

export function parseMemberList(text: string): ListedMember[] {
  type Raw = { members?: Array<{ ID: string; name?: string; peerURLs?: string[]; clientURLs?: string[] }> }
  return (parseJsonExact<Raw>(text).members ?? []).map((m) => ({
    id: String(m.ID),
    name: m.name ?? '',
    peerUrls: m.peerURLs ?? [],
    clientUrls: m.clientURLs ?? [],
  }))
}

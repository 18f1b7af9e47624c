// Takes the snapshot the whole story starts from: on one healthy member (a
// follower when there is one, to spare the leader), `etcdctl snapshot save` to a
// temp file on that host, streamed back here, its SHA-256 trailer checked, and
// named <cluster>-<UTC time>-rev<revision>.db.
import { access, constants, mkdir, readdir, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { Member } from '../inventory/members.ts'
import { InputError, RescueError, ExitCode } from '../errors.ts'
import type { SnapshotInfo } from '../etcd/snapshot.ts'
import { fetchSnapshot } from './fetch.ts'
import { etcdctlArgv, parseJsonExact, snapshotStatusArgv, type SnapshotStatus } from '../etcd/etcdctl.ts'
import { parseVersion, restoreTool } from '../etcd/version.ts'
import { tlsFor } from '../etcd/tls.ts'
import { FIND_BIN } from '../plan/facts.ts'
import { timeStamp } from '../plan/recovery.ts'
import { sh } from '../shell/sh.ts'
import { HostPool, connectAll } from '../task/hosts.ts'
import { Journal } from '../task/journal.ts'
import { runPhase } from '../task/phase.ts'
import { formatBytes } from '../task/format.ts'
import type { Ui } from '../task/ui.ts'
import { probeMember } from '../recover/verify.ts'

export interface BackupOptions {
  members: Member[]
  outDir: string
  /** Delete all but the newest N backups of this cluster in outDir. */
  keep?: number
  /** File name prefix; default the cluster ID in hex. */
  clusterName?: string
  connectTimeoutMs?: number
  /** sudo password for hosts with ansible_become (-K). Default: none, sudo -n. */
  becomePassword?: string
  knownHosts?: string
  ui: Ui
}

export interface BackupResult {
  file: string
  member: string
  revision: number
  snapshot: SnapshotInfo
  removed: string[]
  journal: Journal
  seconds: number
}

export const BACKUP_NAME = /^(.+)-(\d{8}T\d{6}Z)-rev(\d+)\.db$/

export async function backup(o: BackupOptions): Promise<BackupResult> {
  await mkdir(o.outDir, { recursive: true }).catch(() => {})
  try {
    if (!(await stat(o.outDir)).isDirectory()) throw new Error('not a directory')
    await access(o.outDir, constants.W_OK)
  } catch (err) {
    throw new InputError(`backup directory is not writable: ${(err as Error).message}`, { where: o.outDir })
  }
  const t0 = Date.now()
  const journal = new Journal()
  const pool = new HostPool()
  try {
    await connectAll(o.members, pool, o.ui, journal, { connectTimeoutMs: o.connectTimeoutMs, knownHostsFile: o.knownHosts, becomePassword: o.becomePassword }, o.members.length)
    // Which members answer, and which is the leader; tools found like recover's preflight.
    const found = await runPhase(o.ui, journal, 'health', 'Find a healthy member', o.members.filter((m) => pool.hosts.has(m.name)).map((m) => ({
      host: m.name,
      run: async () => {
        const host = pool.get(m.name)
        const tools = await host.exec(sh`BINDIR=${m.binDir ?? ''}
${FIND_BIN}
for t in etcdctl etcdutl; do echo "$t=$(find_bin $t)"; done`)
        const bin = (t: string) => tools.stdout.split('\n').find((l) => l.startsWith(`${t}=`))?.slice(t.length + 1) || undefined
        const etcdctl = bin('etcdctl')
        if (!etcdctl) throw new RescueError('etcdctl not found on this host', { where: m.name })
        const probe = await probeMember(host, { clientUrl: m.clientUrl, tls: tlsFor(m) })
        if (!probe.healthy || !probe.status) throw new RescueError(`not healthy: ${probe.error ?? 'no status'}`, { where: m.name })
        return { value: { member: m, etcdctl, etcdutl: bin('etcdutl'), status: probe.status }, text: `healthy, ${probe.status.leader === probe.status.memberId ? 'leader' : 'follower'}, rev ${probe.status.revision}` }
      },
    })), o.members.length)
    const healthy = [...found.values.values()]
    if (!healthy.length) {
      throw new RescueError('no member is healthy: nothing to take a snapshot from', {
        exitCode: ExitCode.PREFLIGHT,
        hint: 'A cluster without quorum cannot be backed up; recover from your latest backup instead.',
      })
    }
    const pick = healthy.find((h) => h.status.leader !== h.status.memberId) ?? healthy[0]
    const name = o.clusterName ?? BigInt(pick.status.clusterId).toString(16)
    if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new InputError(`cluster name "${name}" cannot be a file name`)

    const saved = await runPhase(o.ui, journal, 'save', `Snapshot ${pick.member.name} and bring it here`, [{
      host: pick.member.name,
      run: async (view) => {
        const host = pool.get(pick.member.name)
        const tmp = (await host.exec(sh`mktemp /tmp/etcd-rescue-backup.XXXXXX`)).stdout.trim()
        try {
          await host.exec(sh`${etcdctlArgv(pick.etcdctl, pick.member.clientUrl, tlsFor(pick.member), ['snapshot', 'save', tmp], '300s')} >/dev/null`)
          const version = parseVersion(pick.status.version)
          const tool = version && restoreTool(version) === 'etcdutl' && pick.etcdutl ? 'etcdutl' : 'etcdctl'
          const st = parseJsonExact<SnapshotStatus>((await host.exec(sh`${snapshotStatusArgv(tool, tool === 'etcdutl' ? pick.etcdutl! : pick.etcdctl, tmp)}`)).stdout)
          const size = Number((await host.exec(sh`wc -c < ${tmp}`)).stdout.trim())
          const file = join(o.outDir, `${name}-${timeStamp()}-rev${st.revision}.db`)
          const snapshot = await fetchSnapshot(host, tmp, file, { size, onProgress: view.update })
          return { value: { file, revision: Number(st.revision), snapshot }, text: `${file} (${formatBytes(size)}, rev ${st.revision}, trailer verified)` }
        } finally {
          await host.exec(sh`rm -f ${tmp}`, { allowFailure: true }).catch(() => {})
        }
      },
    }], 1)
    if (saved.failed.length) throw saved.failed[0].error
    const result = saved.values.get(pick.member.name)!
    const removed = o.keep ? await prune(o.outDir, name, o.keep) : []
    return { ...result, member: pick.member.name, removed, journal, seconds: (Date.now() - t0) / 1000 }
  } finally {
    pool.closeAll()
  }
}

/** Keeps the newest `keep` backups this tool made of this cluster; other files are never touched. */
export async function prune(dir: string, cluster: string, keep: number): Promise<string[]> {
  const ours = (await readdir(dir))
    .map((f) => ({ f, m: BACKUP_NAME.exec(f) }))
    .filter((x) => x.m && x.m[1] === cluster)
    .sort((a, b) => (a.m![2] < b.m![2] ? 1 : a.m![2] > b.m![2] ? -1 : Number(b.m![3]) - Number(a.m![3])))
  const doomed = ours.slice(keep).map((x) => join(dir, x.f))
  for (const f of doomed) await rm(f)
  return doomed
}

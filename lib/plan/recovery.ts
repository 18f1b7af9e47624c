// The whole recovery as plain data, computed before any host is changed: per
// member the paths, the exact scripts, the predicted member ID; for the cluster
// the one --initial-cluster string, the one token and the predicted cluster ID.
// `recover --check` prints this; the executor runs exactly this.
import { randomBytes } from 'node:crypto'
import type { Member } from '../inventory/members.ts'
import type { SnapshotInfo } from '../etcd/snapshot.ts'
import { clusterId, hexId, memberId } from '../etcd/ids.ts'
import { restoreTool } from '../etcd/version.ts'
import { defaultLogFile } from '../etcd/process.ts'
import type { TlsFiles } from '../etcd/etcdctl.ts'
import { tlsFor } from '../etcd/tls.ts'
import type { Script } from '../shell/sh.ts'
import type { HostFacts } from './facts.ts'
import { unitMember, type UnitConfig } from './unit.ts'
import { urlPort } from './checks.ts'
import { memberPaths, type MemberPaths } from './paths.ts'
import { unitArmScript, unitDisarmScript } from './systemd.ts'
import { closingScript, restoreScript, restoredMark, startScript, stopScript, swapScript, uploadScript, logTailScript } from './scripts.ts'

export interface PlanOptions {
  /** Shared --initial-cluster-token; default: reuse an interrupted run's, else a fresh one. */
  token?: string
  bumpRevision?: number
  /** UTC time stamp used in the names of set-aside data. */
  stamp: string
}

export interface MemberPlan {
  name: string
  inventoryHost: string
  peerUrl: string
  clientUrl: string
  memberId: string
  memberIdHex: string
  paths: MemberPaths
  restoreTool: 'etcdctl' | 'etcdutl'
  /** Where each inventory setting came from (variable and file, or which default). */
  origins: Member['origins']
  /** What preflight read from the unit, when the member runs under systemd. */
  unitNote?: string
  /** The systemd unit running this member; undefined for a plain process. */
  unit?: string
  /** Who owns the restored data (undefined: left as restored, root). */
  etcdUser?: string
  /** Client certificates for etcdctl on this host, when the cluster speaks TLS. */
  tls?: TlsFiles
  /** Work a previous run already did, so this run skips it. */
  resume: { snapshotInPlace: boolean; alreadyRestored: boolean; running: number[] }
  scripts: { upload: Script; stop: Script; restore: Script; swap: Script; start: Script; logTail: Script; complete: Script; disarm?: Script }
}

export interface RecoveryPlan {
  snapshot: SnapshotInfo
  token: string
  tokenSource: 'given' | 'resumed' | 'new'
  stamp: string
  etcdVersion: string
  initialCluster: string
  clusterId: string
  clusterIdHex: string
  bumpRevision?: number
  members: MemberPlan[]
}

export function newToken(stamp: string): string {
  return `etcd-rescue-${stamp.toLowerCase()}-${randomBytes(3).toString('hex')}`
}

/** UTC, sortable, safe in file names: 20261125T061500Z. */
export function timeStamp(d = new Date()): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')
}

/**
 * The token of an interrupted run with this same snapshot, if hosts recorded
 * one: reusing it is what lets a second run finish the first instead of
 * restoring the members it already did into a different cluster.
 */
export function resumableToken(facts: HostFacts[], sha256: string): string | undefined {
  const votes = new Map<string, number>()
  for (const f of facts) {
    if (f.restored?.sha256 === sha256) votes.set(f.restored.token, (votes.get(f.restored.token) ?? 0) + 1)
  }
  return [...votes].sort((a, b) => b[1] - a[1])[0]?.[0]
}

export function memberPorts(m: Pick<Member, 'peerUrl' | 'clientUrl'>): number[] {
  return [urlPort(m.peerUrl), urlPort(m.clientUrl)]
}

function unitNote(unit: string, u: UnitConfig): string {
  const um = unitMember(u)
  const agreed = (['name', 'dataDir', 'peerUrl'] as const).filter((k) => um[k] !== undefined).map((k) => `${({ name: 'name', dataDir: 'data dir', peerUrl: 'peer URL' })[k]} (${um.from[k]})`)
  return `unit ${unit}: User=${u.user || 'root'}, Restart=${u.restart || 'no'}; agrees with the inventory on ${agreed.length ? agreed.join(', ') : 'nothing it states (it names no member, data dir or peer URL)'}`
}

export function buildPlan(members: Member[], facts: Map<string, HostFacts>, snapshot: SnapshotInfo, options: PlanOptions): RecoveryPlan {
  const allFacts = members.map((m) => facts.get(m.name)!)
  const resumed = options.token ? undefined : resumableToken(allFacts, snapshot.sha256)
  const token = options.token ?? resumed ?? newToken(options.stamp)
  const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(',')
  const ids = members.map((m) => memberId([m.peerUrl], token))
  const cid = clusterId(ids)

  const plans = members.map((m, i): MemberPlan => {
    const f = allFacts[i]
    const version = f.version!
    const tool = restoreTool(version) === 'etcdutl' && f.bins.etcdutl ? 'etcdutl' : 'etcdctl'
    const toolBin = (tool === 'etcdutl' ? f.bins.etcdutl : f.bins.etcdctl)!
    const paths = memberPaths(m.dataDir, snapshot.sha256, token, options.stamp, f.dataDir.mountpoint)
    const ports = memberPorts(m)
    const stop = { service: m.service, serviceName: m.serviceName, dataDir: paths.dataDir, ports, unitLoaded: f.unitConfig?.loaded }
    const logFile = defaultLogFile(m.name)
    const alreadyRestored = f.restored?.sha256 === snapshot.sha256 && f.restored.token === token && f.dataDir.hasMember
    return {
      name: m.name,
      inventoryHost: m.inventoryHost,
      peerUrl: m.peerUrl,
      clientUrl: m.clientUrl,
      memberId: ids[i].toString(),
      memberIdHex: hexId(ids[i]),
      paths,
      restoreTool: tool,
      tls: tlsFor(m),
      unit: m.service === 'systemd' ? m.serviceName : undefined,
      origins: m.origins,
      unitNote: f.unitConfig && unitNote(m.serviceName, f.unitConfig),
      etcdUser: f.etcdUser?.name ?? m.etcdUser,
      resume: { snapshotInPlace: f.snapshot.sha256 === snapshot.sha256, alreadyRestored, running: f.pids },
      scripts: {
        upload: uploadScript(paths, snapshot.sha256, snapshot.size),
        stop: stopScript(stop),
        restore: restoreScript({
          paths,
          ports,
          sha256: snapshot.sha256,
          mountpoint: f.dataDir.mountpoint,
          // The unit's User= (read in preflight; etcd_user overrides it there): restored files are theirs.
          etcdUser: f.etcdUser?.name ?? m.etcdUser,
          arm: m.service === 'systemd' ? unitArmScript(m.serviceName, undefined, f.unitConfig?.loaded) : undefined,
          restore: {
            tool,
            bin: toolBin,
            name: m.name,
            initialCluster,
            token,
            peerUrl: m.peerUrl,
            // etcd's own check of the trailer would hash the file a second time on each host:
            // the restore script restores only a file proven to be the one checked here
            // (trailer included): its whole SHA-256 checked on that host (a plain copy), or
            // its bytes hashed here as they went into zstd, whose frame checksum and size the
            // host checked (a compressed one). It re-checks the file's identity (size, inode,
            // ctime) right before. On 2 shared cores that hash was ~0.1 s per 130 MiB per
            // member; on 1 GB members, seconds.
            skipHashCheck: true,
            bumpRevision: options.bumpRevision,
          },
        }),
        swap: swapScript({ paths, ports, sha256: snapshot.sha256, token, mountpoint: f.dataDir.mountpoint, etcdUser: f.etcdUser?.name ?? m.etcdUser }),
        start: startScript({
          ...stop,
          restored: { state: paths.state, mark: restoredMark(snapshot.sha256, token) },
          process: { etcdBin: f.bins.etcd!, name: m.name, dataDir: paths.dataDir, peerUrl: m.peerUrl, clientUrl: m.clientUrl, logFile },
        }),
        logTail: logTailScript({ service: m.service, serviceName: m.serviceName, logFile }),
        // Once verified: the journal's mark, then the copied snapshot removed (never the file
        // named by --snapshot HOST:PATH).
        complete: closingScript(paths, snapshot.sha256, token, snapshot.host === m.name ? snapshot.path : undefined),
        // The unit's hold drop-in, inert after the start, removed right after it (beside the quorum wait).
        disarm: m.service === 'systemd' ? unitDisarmScript(m.serviceName) : undefined,
      },
    }
  })

  return {
    snapshot,
    token,
    tokenSource: options.token ? 'given' : resumed ? 'resumed' : 'new',
    stamp: options.stamp,
    etcdVersion: allFacts[0].version!.text,
    initialCluster,
    clusterId: cid.toString(),
    clusterIdHex: hexId(cid),
    bumpRevision: options.bumpRevision,
    members: plans,
  }
}

// recover --from-survivors, the part before the normal recovery: read what every
// member holds, choose the freshest (lib/plan/survivors.ts), take a snapshot of
// it and bring that here as a backup file. Then the normal recovery restores
// every member from that file. Nothing here changes a member: `snapshot save`
// reads, a stopped member's member/snap/db is read in place by a walk of a few
// pages, and only the chosen member's db is copied (into etcd-rescue's work dir).
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { Member } from '../inventory/members.ts'
import { ExitCode, RescueError } from '../errors.ts'
import { readBoltFacts } from '../etcd/bolt.ts'
import { tlsArgs } from '../etcd/etcdctl.ts'
import { tlsFor } from '../etcd/tls.ts'
import type { SnapshotInfo } from '../etcd/snapshot.ts'
import { fetchSnapshot } from '../backup/fetch.ts'
import { memberPaths } from '../plan/paths.ts'
import { memberPorts, timeStamp } from '../plan/recovery.ts'
import { heldReadScript, parseHeld, type MemberData } from '../plan/survivor-read.ts'
import { chooseSurvivor, choiceText, type SurvivorChoice } from '../plan/survivors.ts'
import { sh, type Script } from '../shell/sh.ts'
import type { ConnectOptions, SshHost } from '../ssh/connection.ts'
import { HostPool, connectAll } from '../task/hosts.ts'
import { acquireLock, type HeldLock } from './lock.ts'
import type { Journal } from '../task/journal.ts'
import { runPhase } from '../task/phase.ts'
import { formatBytes } from '../task/format.ts'
import type { Ui } from '../task/ui.ts'

export interface FromSurvivorsOptions {
  members: Member[]
  ui: Ui
  journal: Journal
  connect: ConnectOptions
  forks: number
  /** Where the snapshot of the chosen member is kept. Default: the current directory. */
  backupDir?: string
  /** Only read and choose (recover --check): take no snapshot. */
  chooseOnly?: boolean
  verbose?: boolean
  /** As recover's: wait this long for another run's lock. Default 0. */
  waitLockSeconds?: number
  onWarning?: (w: string) => void
}

export interface FromSurvivorsResult {
  choice: SurvivorChoice
  /** The backup file made from the chosen member (absent with chooseOnly). */
  snapshot?: SnapshotInfo & { revision: number; raftIndex: number; raw: boolean }
}

/** The work dir of a member, where a db copy or a saved snapshot may sit for a moment. */
export function workDir(m: Member): string {
  return memberPaths(m.dataDir, '0'.repeat(64), '', '', false).work
}

export function heldScriptFor(m: Member): Script {
  return heldReadScript({ dataDir: m.dataDir, binDir: m.binDir, clientUrl: m.clientUrl, tls: tlsFor(m), ports: memberPorts(m) })
}

export async function snapshotFromSurvivors(o: FromSurvivorsOptions): Promise<FromSurvivorsResult> {
  const pool = new HostPool()
  const locks: HeldLock[] = []
  try {
    const conn = await connectAll(o.members, pool, o.ui, o.journal, o.connect, o.forks)
    if (conn.failed.length) throw preflight(`cannot connect to ${conn.failed.map((f) => f.host).join(', ')}`, conn.failed)
    // No member is read while another run changes it. Released before the recovery proper takes the locks again.
    const locked = await runPhase(o.ui, o.journal, 'lock', 'Lock each member against a second run', o.members.map((m) => ({
      host: m.name,
      run: async () => {
        locks.push(await acquireLock(pool.get(m.name), m.dataDir, { waitSeconds: o.waitLockSeconds ?? 0, onStale: (holder) => o.onWarning?.(`${m.name}: taking over the lock of a run that ended without releasing it (${holder})`) }))
        return { value: null, text: 'locked' }
      },
    })), o.forks)
    if (locked.failed.length) throw preflight('cannot lock', locked.failed)
    const read = await runPhase(o.ui, o.journal, 'survivors', 'Read what every member holds (read-only)', o.members.map((m) => ({
      host: m.name,
      run: async () => {
        const d = parseHeld((await pool.get(m.name).exec(heldScriptFor(m))).stdout, m.name)
        return { value: d, text: d.hasData ? (d.revision !== undefined ? `${d.state}, revision ${d.revision}${d.raftIndex !== undefined ? `, raft index ${d.raftIndex}` : ''}` : `${d.state}, unreadable: ${d.error}`) : 'no member data' }
      },
    })), o.forks)
    if (read.failed.length) throw preflight('cannot read what the members hold', read.failed)
    const choice = chooseSurvivor(o.members.map((m) => read.values.get(m.name)!))
    o.ui.info(choiceText(choice))
    if (o.chooseOnly) return { choice }

    const m = o.members.find((x) => x.name === choice.chosen.member)!
    const dir = o.backupDir ?? '.'
    await mkdir(dir, { recursive: true })
    const saved = await runPhase(o.ui, o.journal, 'save', `Snapshot ${m.name} and bring it here`, [{
      host: m.name,
      run: async (view) => {
        const s = await saveFromMember(pool.get(m.name), m, choice.chosen, dir, view.update)
        return { value: s, text: `${s.path} (${formatBytes(s.size)}, revision ${s.revision}${s.raw ? ', copy of member/snap/db, checked by snapshot status' : ', trailer verified'})` }
      },
    }], 1)
    if (saved.failed.length) throw preflight(`cannot take a snapshot of ${m.name}`, saved.failed)
    return { choice, snapshot: saved.values.get(m.name)! }
  } finally {
    await Promise.all(locks.map((l) => l.release().catch(() => undefined)))
    pool.closeAll()
  }
}

/**
 * A running member: `snapshot save` against it alone (no quorum needed). A
 * stopped one: a copy of member/snap/db, checked by `snapshot status` there
 * (bbolt's consistency check) and restored later with --skip-hash-check, as
 * etcd's guide says for a raw database. Either way the file's revision is read
 * here again and must not be below what the member reported.
 */
async function saveFromMember(host: SshHost, m: Member, d: MemberData, dir: string, progress: (t: string) => void) {
  const stamp = timeStamp()
  const remote = `${workDir(m)}/from-survivor-${stamp}.db`
  const raw = d.state !== 'running'
  const ctl = d.tools.etcdctl
  const utl = d.tools.etcdutl
  if (!ctl) throw new RescueError('etcdctl not found on this host', { where: m.name, exitCode: ExitCode.PREFLIGHT })
  const take = raw
    ? sh`cp "$D/member/snap/db" "$T"
${utl ? sh`${utl} snapshot status "$T" -w json` : sh`env ETCDCTL_API=3 ${ctl} snapshot status "$T" -w json`} >/dev/null`
    : sh`env ETCDCTL_API=3 ${ctl} ${[`--endpoints=${m.clientUrl}`, '--dial-timeout=2s', '--command-timeout=300s', ...tlsArgs(tlsFor(m))]} snapshot save "$T" >/dev/null`
  try {
    const r = await host.exec(sh`set -e
umask 077
D=${m.dataDir}; W=${workDir(m)}; T=${remote}
mkdir -p "$W"
${take}
echo "size=$(wc -c < "$T" | tr -d ' ')"`)
    const size = Number(/^size=(\d+)$/m.exec(r.stdout)?.[1])
    if (!Number.isSafeInteger(size)) throw new RescueError(`cannot tell the size of ${remote}`, { where: m.name })
    const name = `${d.clusterId ?? 'etcd'}-${stamp}-rev${d.revision}.db`
    const snap = await fetchSnapshot(host, remote, join(dir, name), { size, raw, onProgress: progress })
    const facts = await readBoltFacts(snap.path)
    if (facts.revision < (d.revision ?? 0)) {
      throw new RescueError(`the snapshot holds revision ${facts.revision}, the member reported ${d.revision}`, { where: m.name, hint: 'The member changed while it was read; run again.' })
    }
    return { ...snap, revision: facts.revision, raftIndex: facts.consistentIndex, raw }
  } finally {
    await host.exec(sh`rm -f ${remote}`, { allowFailure: true }).catch(() => {})
  }
}

function preflight(what: string, failed: Array<{ host: string; error: unknown }>): RescueError {
  const lines = failed.map((f) => `  ${f.host}: ${f.error instanceof Error ? f.error.message : String(f.error)}`)
  return new RescueError(`${what}:\n${lines.join('\n')}\nNothing was changed.`, { exitCode: ExitCode.PREFLIGHT })
}

// A rehearsal of the whole disaster: a cluster with a known data set, a backup,
// a destroyed cluster, the very same recovery `recover` runs, and a check of
// every key on every member. Measures the recovery time (RTO) by phase and host.
import { copyFile, open } from 'node:fs/promises'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { fingerprintHosts } from './fingerprint.ts'
import { loadInventory, membersOf, type Member, type MemberContext } from '../inventory/members.ts'
import { ExitCode, InputError, RescueError, formatError } from '../errors.ts'
import { backup, type BackupResult } from '../backup/backup.ts'
import { recover, type RecoverResult } from '../recover/recover.ts'
import { HostPool, connectAll } from '../task/hosts.ts'
import { Journal, type PhaseRecord } from '../task/journal.ts'
import { runPhase } from '../task/phase.ts'
import { silentUi, type Ui } from '../task/ui.ts'
import { memberPorts } from '../plan/recovery.ts'
import { labDown, labUp, clusterStart, type Lab } from '../lab/index.ts'
import { checkDataset, gatewayFor, writeDataset, type Dataset, type DatasetCheck, type Endpoint } from './dataset.ts'
import { tlsFor } from '../etcd/tls.ts'
import { NEGATIVE, killScript, victims, wreckScript, type Scenario } from './disaster.ts'
import { quorumLossAfterWrites, type RecoveryPoint, type RecoveryWay } from './after-writes.ts'

export interface DrillOptions {
  /** Drill on this inventory's running cluster instead of a fresh lab. */
  inventory?: string
  group?: string
  /** With inventory: -e, -u, --private-key, ssh config and ansible.cfg. A lab's own inventory needs none. */
  memberContext?: MemberContext
  /** Required with --inventory: a drill destroys data. */
  yes?: boolean
  /** Lab: hosts (default 3), etcd version (default 3.4.23), name (default: a fresh one). */
  hosts?: number
  etcd?: string
  /** Lab: tini (default) or systemd hosts (kubespray-style), and TLS for the latter. */
  init?: 'tini' | 'systemd'
  tls?: boolean
  labName?: string
  /** Where the lab keeps its state. Default: the lab's own default (.lab/ in the repo). */
  labDir?: string
  /** Keep the lab up afterwards. Default false. */
  keepLab?: boolean
  /** Keys in the data set. Default 3000. */
  keys?: number
  scenario?: Scenario
  /** Passed to every recovery (with --mark-compacted), as a Kubernetes cluster's would be. Default: none. */
  bumpRevision?: number
  /** Where backups go. Default: a backups/ dir next to the report. */
  backupDir: string
  knownHosts?: string
  connectTimeoutMs?: number
  /** sudo password for hosts with ansible_become (-K). Default: none, sudo -n. */
  becomePassword?: string
  ui: Ui
}

export interface DrillReport {
  tool: 'etcd-rescue drill'
  result: string
  scenario: Scenario
  expected: string
  actual: string
  startedAt: string
  endedAt: string
  target: { kind: 'lab' | 'inventory'; name: string; hosts: number }
  etcdVersion?: string
  keysWritten: number
  keysChecked: number
  keyChecks: DatasetCheck[]
  snapshot?: { file: string; size: number; revision: number; sha256: string }
  rtoSeconds?: number
  /** What the recovery lost (RPO): keys written and not there after, revisions given up. */
  recoveryPoint?: RecoveryPoint
  /** quorum-loss-after-writes: each way of recovering, its time and its loss. */
  ways?: RecoveryWay[]
  bumpRevision?: number
  phases: Array<Pick<PhaseRecord, 'startedAt' | 'endedAt' | 'host' | 'outcome' | 'detail'> & { name: string; seconds: number }>
  recovery?: { exitCode: number; result: string; message: string; verification: RecoverResult['checks'] }
  error?: string
}

export async function drill(o: DrillOptions): Promise<DrillReport> {
  const scenario = o.scenario ?? 'total-loss'
  const journal = new Journal()
  const pool = new HostPool()
  const ui = o.ui
  const report: DrillReport = {
    tool: 'etcd-rescue drill',
    result: 'failed',
    scenario,
    expected: NEGATIVE.has(scenario)
      ? (scenario === 'corrupt-snapshot' ? 'refused with exit 2, nothing changed' : 'refused with exit 3, nothing changed')
      : scenario === 'quorum-loss-after-writes'
        ? 'with the backup (--accept-data-loss) the writes after it are lost and counted; with --from-survivors nothing is lost'
        : 'recovered and verified, every key on every member',
    actual: '',
    startedAt: journal.startedAt.toISOString(),
    endedAt: '',
    target: { kind: o.inventory ? 'inventory' : 'lab', name: o.inventory ?? '', hosts: 0 },
    keysWritten: 0,
    keysChecked: 0,
    keyChecks: [],
    bumpRevision: o.bumpRevision,
    phases: [],
  }
  let lab: Lab | undefined
  let recovery: RecoverResult | undefined
  const step = async <T>(name: string, fn: () => Promise<[T, string]>): Promise<T> => {
    const r = await runPhase(ui, journal, name, name, [{ host: 'drill', run: async () => { const [value, text] = await fn(); return { value, text } } }], 1)
    if (r.failed.length) throw r.failed[0].error
    return r.values.get('drill') as T
  }

  try {
    // The target: a fresh lab, or a staging cluster that explicitly allows drills.
    let inventory: string
    if (o.inventory) {
      if (scenario === 'unreachable-host') throw new InputError('the unreachable-host scenario needs the lab (it takes a host\'s network down)')
      const set = membersOf(loadInventory(o.inventory), o.group ?? 'etcd', o.memberContext)
      const refused = set.members.filter((m) => m.vars.etcd_drill_allowed !== true)
      if (refused.length) {
        throw new InputError(`a drill destroys the cluster's data, and this inventory does not allow it (etcd_drill_allowed is not true for ${refused.map((m) => m.name).join(', ')})`, {
          where: o.inventory,
          hint: `Set etcd_drill_allowed: true in group_vars/${o.group ?? 'etcd'} of a staging inventory, never production.`,
        })
      }
      if (!o.yes) throw new InputError('a drill on an inventory destroys its cluster: pass --yes to confirm')
      inventory = o.inventory
    } else {
      lab = await step('lab up', async () => {
        const l = await labUp({ name: o.labName ?? `drill${Math.random().toString(36).slice(2, 5)}`, hosts: o.hosts, etcd: o.etcd, dir: o.labDir, init: o.init, tls: o.tls })
        return [l, `lab ${l.name}: ${l.state.hosts.length} hosts, etcd ${l.state.etcd.version}`]
      })
      report.target.name = lab.name
      await step('cluster start', async () => {
        const c = await clusterStart(lab!)
        return [c, `${c.members.length} members healthy in ${(c.elapsedMs / 1000).toFixed(1)} s`]
      })
      inventory = lab.paths.inventory
    }
    const memberContext = o.inventory ? o.memberContext : undefined
    const members = membersOf(loadInventory(inventory), o.group ?? 'etcd', memberContext).members
    report.target.hosts = members.length
    const conn = await connectAll(members, pool, ui, journal, { connectTimeoutMs: o.connectTimeoutMs, knownHostsFile: o.knownHosts, becomePassword: o.becomePassword }, members.length)
    if (conn.failed.length) throw new RescueError(`cannot reach ${conn.failed.map((f) => f.host).join(', ')}: ${formatError(conn.failed[0].error)}`)
    const endpoints = members.map((m) => ({ name: m.name, host: pool.get(m.name), clientUrl: m.clientUrl, tls: tlsFor(m) }))

    const keys = o.keys ?? 3000
    const data = await step('write data set', async () => {
      const d = await writeDataset(endpoints.map(gatewayFor), { keys, seed: `drill-${report.startedAt}` })
      return [d, `${d.digests.size} keys, ${(d.bytes / 2 ** 20).toFixed(1)} MiB, up to revision ${d.revision}`]
    })
    report.keysWritten = data.digests.size

    const saved: BackupResult = await step('backup', async () => {
      const b = await backup({ members, outDir: o.backupDir, ui: silentUi(ui), knownHosts: o.knownHosts, connectTimeoutMs: o.connectTimeoutMs, becomePassword: o.becomePassword })
      return [b, `${b.file} from ${b.member}, revision ${b.revision}`]
    })
    report.snapshot = { file: saved.file, size: saved.snapshot.size, revision: saved.revision, sha256: saved.snapshot.sha256 }

    if (scenario === 'quorum-loss-after-writes') {
      const { ways, recoveries } = await quorumLossAfterWrites({
        members, pool, endpoints, journal, ui, inventory, memberContext, becomePassword: o.becomePassword, group: o.group, backupFile: saved.file, backupDir: o.backupDir, data, keys,
        seed: `drill-${report.startedAt}`, bumpRevision: o.bumpRevision, knownHosts: o.knownHosts, connectTimeoutMs: o.connectTimeoutMs,
      })
      recovery = recoveries.at(-1)
      report.ways = ways
      report.etcdVersion = recovery?.plan?.etcdVersion
      const [withBackup, fromSurvivors] = ways
      if (!(withBackup.keysLost > 0 && withBackup.revisionsLost > 0)) throw new RescueError(`the backup way should have lost the writes after the backup; it lost ${withBackup.keysLost} keys, ${withBackup.revisionsLost} revisions`)
      if (fromSurvivors.keysLost || fromSurvivors.revisionsLost) throw new RescueError(`--from-survivors lost ${fromSurvivors.keysLost} keys, ${fromSurvivors.revisionsLost} revisions`)
      await verifyKeys(report, journal, ui, endpoints, data)
      report.rtoSeconds = fromSurvivors.rtoSeconds
      report.recoveryPoint = { keysLost: 0, revisionsLost: 0 }
      report.actual = `with the backup: ${withBackup.keysLost} keys and ${withBackup.revisionsLost} revisions lost, ${withBackup.rtoSeconds.toFixed(1)} s; from ${fromSurvivors.chosen}: nothing lost, ${fromSurvivors.rtoSeconds.toFixed(1)} s`
    } else if (NEGATIVE.has(scenario)) {
      await negative(scenario, { o, lab, members, pool, saved, report, journal, inventory, data, endpoints })
    } else {
      const hit = victims(scenario, members.length).map((i) => members[i])
      const disaster = await runPhase(ui, journal, 'disaster', `Disaster: ${scenario}`, hit.map((m) => ({
        host: m.name,
        run: async () => {
          const h = pool.get(m.name)
          const k = await h.exec(killScript(m.dataDir, memberPorts(m)))
          await h.exec(wreckScript(m.dataDir))
          return { value: null, text: `etcd killed (${k.stdout.trim().replace('killed=', 'pid ')}), WAL removed, db overwritten` }
        },
      })), hit.length)
      if (disaster.failed.length) throw disaster.failed[0].error
      const disasterAt = Date.now()

      recovery = await recover({ inventory, memberContext, snapshot: saved.file, ui, knownHosts: o.knownHosts, connectTimeoutMs: o.connectTimeoutMs, group: o.group, becomePassword: o.becomePassword, bumpRevision: o.bumpRevision })
      report.rtoSeconds = (Date.now() - disasterAt) / 1000
      journal.records.push(...recovery.journal.records)
      report.etcdVersion = recovery.plan?.etcdVersion
      if (recovery.exitCode !== ExitCode.OK) throw new RescueError(`recovery did not succeed (exit ${recovery.exitCode}): ${recovery.message}`)

      await verifyKeys(report, journal, ui, endpoints, data)
      report.recoveryPoint = { keysLost: data.digests.size - report.keysChecked, revisionsLost: recovery.survivors?.accepted ? recovery.survivors.revisionsLost : 0 }
      report.actual = `recovered and verified in ${report.rtoSeconds.toFixed(1)} s; ${report.keysChecked} keys equal on all ${members.length} members`
    }
    report.result = 'verified'
  } catch (err) {
    report.error = formatError(err)
    report.actual ||= report.error.split('\n')[0]
  } finally {
    pool.closeAll()
    if (lab && !o.keepLab) {
      const started = new Date()
      await labDown({ name: lab.name, dir: o.labDir }).then(
        () => journal.add('lab down', 'drill', started, 'ok', `lab ${lab!.name} removed`),
        (e) => journal.add('lab down', 'drill', started, 'failed', formatError(e)),
      )
    }
    if (recovery) {
      report.recovery = { exitCode: recovery.exitCode, result: recovery.result, message: recovery.message, verification: recovery.checks }
    }
    report.endedAt = new Date().toISOString()
    report.phases = journal.records.map((r) => ({ name: r.phase, host: r.host, startedAt: r.startedAt, endedAt: r.endedAt, seconds: r.seconds, outcome: r.outcome, detail: r.detail }))
  }
  return report
}

interface NegativeContext {
  o: DrillOptions
  lab?: Lab
  members: Member[]
  pool: HostPool
  saved: BackupResult
  report: DrillReport
  journal: Journal
  inventory: string
  data: Dataset
  endpoints: Endpoint[]
}

/** A refusal drill: recovery must stop before any change, and the cluster must be exactly as it was. */
async function negative(scenario: Scenario, c: NegativeContext): Promise<void> {
  const before = await fingerprintHosts(c.members, c.pool)
  let snapshot = c.saved.file
  let restoreLink: (() => void) | undefined
  if (scenario === 'corrupt-snapshot') {
    snapshot = join(c.o.backupDir, 'corrupt-for-drill.db')
    await copyFile(c.saved.file, snapshot)
    const fh = await open(snapshot, 'r+')
    const b = Buffer.alloc(1)
    const at = Math.floor(c.saved.snapshot.size / 2)
    await fh.read(b, 0, 1, at)
    b[0] ^= 0xff
    await fh.write(b, 0, 1, at)
    await fh.close()
  } else {
    // unreachable-host: the last host's link goes down; SYNs go unanswered.
    const veth = c.lab!.state.hosts.at(-1)!.veth!
    execFileSync('ip', ['link', 'set', 'dev', veth, 'down'])
    restoreLink = () => execFileSync('ip', ['link', 'set', 'dev', veth, 'up'])
  }
  let r: RecoverResult
  try {
    r = await recover({ inventory: c.inventory, memberContext: c.o.inventory ? c.o.memberContext : undefined, snapshot, ui: c.o.ui, knownHosts: c.o.knownHosts, connectTimeoutMs: scenario === 'unreachable-host' ? 3000 : c.o.connectTimeoutMs, group: c.o.group, becomePassword: c.o.becomePassword })
  } finally {
    restoreLink?.()
  }
  c.journal.records.push(...r.journal.records)
  c.report.recovery = { exitCode: r.exitCode, result: r.result, message: r.message, verification: r.checks }
  const wanted = scenario === 'corrupt-snapshot' ? ExitCode.BAD_INPUT : ExitCode.PREFLIGHT
  const after = await fingerprintHosts(c.members, c.pool)
  const unchanged = JSON.stringify(before) === JSON.stringify(after)
  c.report.actual = `recover exited ${r.exitCode} (${r.result}); hosts ${unchanged ? 'unchanged' : 'CHANGED'}: ${r.message.split('\n')[0]}`
  if (r.exitCode !== wanted || r.journal.changed() || !unchanged) throw new RescueError(`expected a refusal with exit ${wanted} and no change; got: ${c.report.actual}`)
  await verifyKeys(c.report, c.journal, c.o.ui, c.endpoints, c.data)
}

async function verifyKeys(report: DrillReport, journal: Journal, ui: Ui, endpoints: NegativeContext['endpoints'], data: Dataset): Promise<void> {
  const checked = await runPhase(ui, journal, 'verify keys', 'Verify every key on every member', endpoints.map((e) => ({
    host: e.name,
    run: async () => {
      const r = await checkDataset(e, data)
      report.keyChecks.push(r)
      if (r.missing.length || r.different.length) throw new RescueError(`${r.missing.length} keys missing, ${r.different.length} differ (e.g. ${[...r.missing, ...r.different].slice(0, 3).join(', ')})`, { where: e.name })
      return { value: r, text: `${data.digests.size} of ${data.digests.size} keys equal byte for byte` }
    },
  })), endpoints.length)
  if (checked.failed.length) throw checked.failed[0].error
  // A key counts as checked when it was equal on every member.
  report.keysChecked = [...data.digests.keys()].filter((k) => report.keyChecks.every((c) => !c.missing.includes(k) && !c.different.includes(k))).length
}

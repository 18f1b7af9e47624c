// Recovery time, side by side in one run: the expert's by-hand OpenSSH
// procedure (manual.ts) and etcd-rescue, on the same lab, the same snapshot and
// the same disaster, alternating which goes first each round. Reports medians
// and their ratio. Nothing here asserts a timing: it measures and prints.
// etcd-rescue runs as a user runs it, scripts/recover.mjs in a process of its
// own: its time includes starting up, and the peak RSS reported is its own,
// not this bench's.
import { spawn, spawnSync } from 'node:child_process'
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { loadInventory, membersOf, type Member } from '../inventory/members.ts'
import { RescueError } from '../errors.ts'
import { backup } from '../backup/backup.ts'
import { HostPool, connectAll } from '../task/hosts.ts'
import { Journal } from '../task/journal.ts'
import { memberPorts } from '../plan/recovery.ts'
import { posix } from 'node:path'
import { joinScripts, sh } from '../shell/sh.ts'
import type { Ui } from '../task/ui.ts'
import { clusterLoad, clusterStart, labDown, labUp } from '../lab/index.ts'
import { labGateways } from '../lab/load.ts'
import { cgroup2Mount, removeCgroup } from '../lab/cgroup.ts'
import { tlsFor } from '../etcd/tls.ts'
import { REPO_ROOT } from '../lab/paths.ts'
import { KUBESPRAY_BIN_DIR } from '../lab/kubespray-etcd.ts'
import { killScript, wreckScript } from '../drill/disaster.ts'
import { labLink, labLogin, type Login } from '../lab/shape.ts'
import { fillCluster, fillKube } from './fill.ts'
import { formatBytes } from '../task/format.ts'
import { manualScript } from './manual.ts'

/** Where the bench puts lab hosts' disks when RAM will not hold them (lab up --disk-dir). */
export const BENCH_DISK_DIR = '/var/tmp/etcd-rescue-lab'

/**
 * The lab's disks for a snapshot of `bytes` on `hosts` hosts. Each host holds at
 * once the old data (db and WAL), the uploaded snapshot, the restored data and
 * the expert's copy: about 5 × the snapshot. In RAM (tmpfs) while all hosts
 * together need at most a quarter of it; else on the machine's disk.
 */
export function labDisk(hosts: number, bytes: number, ram = totalmem()): { disk: string; diskDir?: string } {
  const perHost = 5 * bytes + 512 * 2 ** 20
  const gib = Math.max(4, Math.ceil(perHost / 2 ** 30))
  return hosts * perHost > ram / 4 ? { disk: '4G', diskDir: BENCH_DISK_DIR } : { disk: `${gib}G` }
}

export interface BenchOptions {
  hosts: number
  etcd: string
  /** The snapshot's size: the cluster is filled with this many bytes of large values (fill.ts). */
  sizeBytes?: number
  /**
   * What the cluster holds: 'random' (default) large incompressible values with
   * sizeBytes, else the lab's varied load of `keys`; 'kube': Kubernetes-like objects
   * (kube.ts) up to sizeBytes (default 120 MiB), whose snapshot zstd -1 shrinks 2.8x.
   */
  data?: 'random' | 'kube'
  /** etcd-rescue with --no-compress. */
  noCompress?: boolean
  /** Hosts as kubespray makes them: systemd, etcd.service (User=etcd, kubespray's timeouts), TLS, a login user with sudo. */
  systemd?: boolean
  /** Keep each etcd-rescue round's output and --report JSON here (rescue-ROUND.log, .json). */
  logsDir?: string
  /** Without sizeBytes: keys of the lab's varied load (`cluster load`). */
  keys: number
  rounds: number
  /** Hosts' disks on the machine's disk in this directory; null: in RAM. Default: labDisk() chooses. */
  diskDir?: string | null
  /** What each remote command's login shell costs on the hosts (lib/lab/shape.ts). Default fast. */
  login?: Login
  /** Operator-to-hosts link rate, e.g. 100mbit. Default: unlimited. */
  link?: string
  /** etcd-rescue's --relay / --no-relay; default: its own choice (auto). */
  relay?: boolean | 'auto'
  ui: Ui
  keepLab?: boolean
  log: (line: string) => void
}

export interface BenchRound {
  round: number
  method: 'manual' | 'etcd-rescue'
  seconds: number
  /** Seconds per phase (etcd-rescue: the slowest host of each phase; manual: between its marks). */
  phases: Record<string, number>
  /** Remote commands started in all (each a login shell on a host). */
  remoteCommands: number
  /** etcd-rescue rounds: its process's peak resident memory (from its report). */
  peakRssBytes?: number
  /**
   * Seconds into the round (from just before the tool was started) at which
   * every member's restored data was in place: the expert's restore mark,
   * etcd-rescue's last swap. Absent where unread.
   */
  inPlaceSeconds?: number
  /**
   * Seconds into the round at which the cluster was healthy (the expert's
   * quorum mark) or verified (etcd-rescue's verification ended): after
   * inPlaceSeconds comes starting etcd, its first election (random: up to
   * twice the election timeout) and, for etcd-rescue, the proof. What follows
   * this, to the round's end, is exiting (and for etcd-rescue on systemd hosts,
   * removing the hold's drop-ins). Absent where unread.
   */
  doneSeconds?: number
  /**
   * CPU time the whole machine spent during the round (/proc/stat), seconds: the
   * lab's hosts, their etcds and the tool all share this machine's cores, so it is
   * the round's whole work. Against `seconds × cores` it tells whether a round
   * waited (idle cores) or computed (every core busy). Absent where unread.
   */
  cpuSeconds?: number
  /**
   * Of cpuSeconds, what the operator's side spent: the tool's own process tree
   * (etcd-rescue and its zstd; the expert's bash and its ssh clients, their
   * ControlMaster processes included), counted by a cgroup it runs in. The rest is
   * the hosts' (sshd, etcd, etcdutl, the decompressors), the kernel's (the network
   * between them) and anything else running. Absent without cgroup2.
   */
  operatorCpuSeconds?: number
  note: string
}

/** --data kube without --size: about the snapshot the issue's targets name. */
export const KUBE_DEFAULT_BYTES = 120 * 2 ** 20

export interface BenchResult {
  hosts: number
  /** What the cluster held ('random' values or 'kube'-like objects), and whether etcd-rescue ran with --no-compress. */
  data: 'random' | 'kube'
  noCompress: boolean
  /** Hosts ran etcd under systemd with TLS, as kubespray installs it (absent: plain processes, http). */
  systemd?: boolean
  login: Login
  link: string
  /** etcd-rescue's relay setting in this bench. */
  relay: string
  machine: { cpus: number; date: string }
  /** Where the hosts' disks were: RAM (tmpfs) or the machine's disk. */
  disk: 'ram' | 'disk'
  /**
   * etcd-rescue's own peak RSS, the largest of its rounds: it runs as the user
   * runs it (scripts/recover.mjs, a process of its own) and reports its VmHWM
   * (not ru_maxrss, which a child inherits from this larger process).
   */
  peakRssBytes: number
  /** Each member's copy throughput against parallel `ssh HOST 'cat > f'` of the same file. */
  copy: { rescueMBps: number; sshCatMBps: number }
  manualRange: [number, number]
  rescueRange: [number, number]
  etcdVersion: string
  /** The size asked for (--size), when it was; snapshotBytes is what the snapshot came to. */
  requestedBytes?: number
  snapshotBytes: number
  keys: number
  rounds: BenchRound[]
  manualMedian: number
  rescueMedian: number
  /** etcd-rescue time / manual time: below 1 means etcd-rescue is faster. */
  ratio: number
}

/** The machine's CPU counters from /proc/stat's first line: busy and idle time, in clock ticks. */
export interface CpuTicks {
  busy: number
  idle: number
}

/**
 * /proc/stat's aggregate "cpu" line (user nice system idle iowait irq softirq
 * steal …, in USER_HZ ticks): idle is idle + iowait, busy is user, nice, system,
 * irq and softirq (guest time is already counted in user). Steal, the time a
 * hypervisor gave this VM's CPUs to others, is neither: the machine did no work
 * then. Undefined when there is no such line.
 */
export function parseCpuTicks(stat: string): CpuTicks | undefined {
  const line = stat.split('\n').find((l) => /^cpu\s/.test(l))
  if (!line) return undefined
  const v = line.trim().split(/\s+/).slice(1, 8).map(Number)
  if (v.length < 4 || v.some((x) => !Number.isFinite(x))) return undefined
  const [user, nice, system, idle, iowait = 0, irq = 0, softirq = 0] = v
  return { busy: user + nice + system + irq + softirq, idle: idle + iowait }
}

/** A cgroup2 cpu.stat's usage_usec, in seconds; undefined when it has none. */
export function parseCgroupUsage(cpuStat: string): number | undefined {
  const m = /^usage_usec (\d+)$/m.exec(cpuStat)
  return m ? Number(m[1]) / 1e6 : undefined
}

/** This process's own cgroup2 path (the `0::` line of /proc/self/cgroup), or undefined. */
export function ownCgroupPath(procSelfCgroup: string): string | undefined {
  const line = procSelfCgroup.split('\n').find((l) => l.startsWith('0::'))
  return line ? line.slice(3) || '/' : undefined
}

/**
 * A cgroup2 directory for the operator's side of one bench: each tool's process
 * tree runs in it (see inCgroup), daemonized ssh ControlMasters included, so its
 * cpu.stat splits the machine's CPU into the operator's and the rest (the hosts,
 * the kernel's work for both, anything else running). A child of the bench's own
 * cgroup, so the CPU controller, where one is on, shares the cores out as before
 * (a directory at the root would get a weight of its own). Undefined where cgroup2
 * is not mounted, not writable, or a process cannot move in: no split then.
 */
function operatorCgroup(lab: string): string | undefined {
  const mount = cgroup2Mount()
  let own: string | undefined
  try {
    own = ownCgroupPath(readFileSync('/proc/self/cgroup', 'utf8'))
  } catch {
    own = undefined
  }
  if (!mount || !own) return undefined
  const dir = join(mount, own, `etcd-rescue-bench-${lab}-operator`)
  try {
    mkdirSync(dir)
  } catch {
    return undefined
  }
  // A process must be able to move in (delegation, permissions): else every round would fail.
  const [cmd, args] = inCgroup(dir, 'true', [])
  if (spawnSync(cmd, args, { stdio: 'ignore' }).status === 0) return dir
  try {
    rmdirSync(dir)
  } catch {
    // Left as it is: empty, and named after this bench's lab.
  }
  return undefined
}

function cgroupCpuSeconds(dir: string | undefined): number | undefined {
  if (!dir) return undefined
  try {
    return parseCgroupUsage(readFileSync(join(dir, 'cpu.stat'), 'utf8'))
  } catch {
    return undefined
  }
}

/** A command that first moves itself into `cgroup` (when there is one), so all it starts is counted there. */
export function inCgroup(cgroup: string | undefined, command: string, args: string[]): [string, string[]] {
  return cgroup ? ['sh', ['-c', 'echo $$ >"$1/cgroup.procs" || exit 1; shift; exec "$@"', 'bench-operator', cgroup, command, ...args]] : [command, args]
}

/**
 * The operator's cgroup gone: what still runs in it (an ssh ControlMaster of a
 * failed round, kept by ControlPersist) was started by this bench, and is ended
 * first: by cgroup.kill, or on kernels before 5.14 by KILL to each process listed.
 */
async function removeOperatorCgroup(dir: string | undefined): Promise<void> {
  if (!dir || (await removeCgroup(dir, 2000))) return
  try {
    writeFileSync(join(dir, 'cgroup.kill'), '1')
  } catch {
    try {
      for (const pid of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').map(Number).filter((p) => p > 1)) {
        try {
          process.kill(pid, 'SIGKILL')
        } catch {
          // Gone meanwhile.
        }
      }
    } catch {
      // The directory went meanwhile.
    }
  }
  if (!(await removeCgroup(dir))) process.stderr.write(`warning: cgroup ${dir} still has processes; remove it with rmdir once they are gone\n`)
}

/** USER_HZ: 100 on every Linux architecture the lab runs on. */
const TICKS_PER_SECOND = 100

/** The machine's CPU counters now; undefined where /proc/stat is not there. */
function cpuTicks(): CpuTicks | undefined {
  try {
    return parseCpuTicks(readFileSync('/proc/stat', 'utf8'))
  } catch {
    return undefined
  }
}

/** Busy CPU-seconds between two readings. */
export function cpuSecondsBetween(a: CpuTicks | undefined, b: CpuTicks | undefined): number | undefined {
  return a && b ? (b.busy - a.busy) / TICKS_PER_SECOND : undefined
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

export async function bench(o: BenchOptions): Promise<BenchResult> {
  const auto = o.sizeBytes !== undefined ? labDisk(o.hosts, o.sizeBytes) : { disk: '4G' }
  const diskDir = o.diskDir === null ? undefined : o.diskDir ?? auto.diskDir
  const lab = await labUp({
    name: `bench${Math.random().toString(36).slice(2, 5)}`, hosts: o.hosts, etcd: o.etcd, disk: auto.disk, diskDir,
    ...(o.systemd ? { init: 'systemd' as const, tls: true, sudo: 'nopasswd' as const, etcdRestart: 'always' as const } : {}),
  })
  const login = o.login ?? 'fast'
  const control = mkdtempSync(join(tmpdir(), 'etcd-rescue-bench-'))
  // The expert's multiplexing sockets: ssh makes DIR/<40-hex %C>.<16 chars> while it sets one
  // up, and a Unix socket's path has 107 bytes at most, so a long TMPDIR would fail them.
  const sockets = mkdtempSync(join(tmpdir().length <= 36 ? tmpdir() : '/tmp', 'erb-'))
  const operator = operatorCgroup(lab.name)
  const pool = new HostPool()
  try {
    o.log(`lab ${lab.name}: ${o.hosts} hosts, etcd ${lab.state.etcd.version}${o.systemd ? ', systemd + TLS as kubespray installs it' : ''}, disks ${lab.state.diskDir ? `in ${lab.state.diskDir}` : `in RAM (tmpfs ${lab.state.disk})`}`)
    await clusterStart(lab)
    const members = membersOf(loadInventory(lab.paths.inventory)).members
    await connectAll(members, pool, o.ui, new Journal(), {}, members.length)
    const t0 = Date.now()
    const load = o.data === 'kube'
      ? await fillKube(labGateways(lab), o.sizeBytes ?? KUBE_DEFAULT_BYTES, {
        onProgress: (done) => o.log(`  wrote ${done} objects`),
      })
      : o.sizeBytes !== undefined
      ? await fillCluster(labGateways(lab), o.sizeBytes, {
        onProgress: (done, of) => { if (done % 500 === 0) o.log(`  filled ${done}/${of} values`) },
      })
      : await clusterLoad(lab, { keys: o.keys })
    o.log(`loaded ${load.keys} keys (${(load.bytes / 2 ** 20).toFixed(0)} MiB) in ${((Date.now() - t0) / 1000).toFixed(0)} s`)
    const snap = await backup({ members, outDir: join(control, 'backup'), ui: o.ui })
    o.log(`snapshot ${(snap.snapshot.size / 2 ** 20).toFixed(0)} MiB at revision ${snap.revision}`)
    // Conditions after the set-up, so loading and the backup are not what is measured.
    if (login !== 'fast') await labLogin(lab, login)
    if (o.link) await labLink(lab, o.link)
    o.log(`conditions: login ${login}, link ${o.link ?? 'unlimited'}`)
    // Each lab's rounds apart (a --scale matrix runs several).
    const logsDir = o.logsDir && join(o.logsDir, `${o.hosts}-hosts-${mib(snap.snapshot.size)}MiB-${lab.name}`)
    if (logsDir) o.log(`etcd-rescue's output and report of each round: ${logsDir}/rescue-ROUND.log, .json`)
    const sshCatMBps = await sshCatThroughput(members, snap.file, control)
    o.log(`parallel ssh cat of the snapshot to every host: ${sshCatMBps.toFixed(0)} MB/s per host`)
    const copyRates: number[] = []

    const rounds: BenchRound[] = []
    for (let r = 1; r <= o.rounds; r++) {
      const order: Array<BenchRound['method']> = r % 2 ? ['manual', 'etcd-rescue'] : ['etcd-rescue', 'manual']
      for (const method of order) {
        await disaster(members, pool)
        let round: BenchRound
        const cpu0 = cpuTicks()
        const op0 = cgroupCpuSeconds(operator)
        if (method === 'manual') {
          const t1 = process.hrtime.bigint()
          const startedAtMs = Date.now()
          const script = manualScript({
            // A systemd host has etcd where kubespray puts it, whichever release.
            members, snapshot: snap.file, binDir: o.systemd ? KUBESPRAY_BIN_DIR : lab.state.etcd.binDir, token: `manual-${r}`, controlDir: sockets, tls: tlsFor(members[0]),
            restoreWith: lab.state.etcd.version.startsWith('3.4') ? 'etcdctl' : 'etcdutl',
          })
          const file = join(control, `manual-${r}.sh`)
          writeFileSync(file, script)
          const out = (await runBash(file, operator)).split('\n')
          const seconds = Number(process.hrtime.bigint() - t1) / 1e9
          round = { round: r, method, seconds, ...manualMarks(out, startedAtMs), note: 'healthy (health only)' }
        } else {
          const run = await runRescue(lab.paths.inventory, snap.file, control, r, o.relay, o.noCompress, operator, logsDir)
          round = { round: r, ...rescueRound(run.report, run.seconds, run.spawnedAtMs) }
          // The copy starts once every member is locked and runs alongside preflight: its time is both phases.
          if (round.phases.copy) copyRates.push(snap.snapshot.size / 1e6 / (round.phases.copy + (round.phases.preflight ?? 0)))
        }
        round.cpuSeconds = cpuSecondsBetween(cpu0, cpuTicks())
        const op1 = cgroupCpuSeconds(operator)
        if (op0 !== undefined && op1 !== undefined) round.operatorCpuSeconds = op1 - op0
        rounds.push(round)
        o.log(`round ${r}: ${method.padEnd(11)} ${round.seconds.toFixed(2)} s  ${round.note}; ${round.remoteCommands} remote commands; ${Object.entries(round.phases).map(([p, t]) => `${p} ${t.toFixed(1)}`).join(', ')}${round.inPlaceSeconds !== undefined ? `; data in place at ${round.inPlaceSeconds.toFixed(2)} s` : ''}${round.doneSeconds !== undefined ? `, ${round.method === 'manual' ? 'healthy' : 'verified'} at ${round.doneSeconds.toFixed(2)} s` : ''}${round.peakRssBytes ? `; peak RSS ${mib(round.peakRssBytes)} MiB` : ''}${cpuText(round, cpus().length)}`)
      }
    }
    const times = (m: BenchRound['method']) => rounds.filter((x) => x.method === m).map((x) => x.seconds)
    const manualMedian = median(times('manual'))
    const rescueMedian = median(times('etcd-rescue'))
    return {
      hosts: o.hosts, data: o.data ?? 'random', noCompress: !!o.noCompress, ...(o.systemd ? { systemd: true } : {}), login, link: o.link ?? 'unlimited', relay: relayLabel(o.relay), machine: { cpus: cpus().length, date: new Date().toISOString() },
      disk: lab.state.diskDir ? 'disk' : 'ram',
      peakRssBytes: Math.max(...rounds.map((x) => x.peakRssBytes ?? 0)),
      copy: { rescueMBps: median(copyRates), sshCatMBps },
      manualRange: [Math.min(...times('manual')), Math.max(...times('manual'))],
      rescueRange: [Math.min(...times('etcd-rescue')), Math.max(...times('etcd-rescue'))],
      etcdVersion: lab.state.etcd.version, requestedBytes: o.sizeBytes, snapshotBytes: snap.snapshot.size, keys: load.keys,
      rounds, manualMedian, rescueMedian, ratio: rescueMedian / manualMedian,
    }
  } finally {
    pool.closeAll()
    await removeOperatorCgroup(operator)
    if (!o.keepLab) await labDown({ name: lab.name })
    rmSync(control, { recursive: true, force: true })
    rmSync(sockets, { recursive: true, force: true })
  }
}

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0)

/** `; CPU 6.4 s, 1.9 of 2 cores busy`: the round's whole machine. Empty where it was not read. */
export function cpuText(r: Pick<BenchRound, 'cpuSeconds' | 'operatorCpuSeconds' | 'seconds'>, cores: number): string {
  if (r.cpuSeconds === undefined || !(r.seconds > 0)) return ''
  const op = r.operatorCpuSeconds === undefined ? '' : ` (operator's side ${r.operatorCpuSeconds.toFixed(1)}, hosts and kernel ${(r.cpuSeconds - r.operatorCpuSeconds).toFixed(1)})`
  return `; CPU ${r.cpuSeconds.toFixed(1)} s${op}, ${(r.cpuSeconds / r.seconds).toFixed(1)} of ${cores} cores busy`
}

/** The expert's step marks (`mark NAME EPOCH`) as seconds per step, and its `commands N` line. */
export function manualMarks(out: string[], startedAtMs?: number): { phases: Record<string, number>; remoteCommands: number; inPlaceSeconds?: number; doneSeconds?: number } {
  const phases: Record<string, number> = {}
  const marks = out.filter((l) => l.startsWith('mark ')).map((l) => l.split(' '))
  for (const [k, [, name, t]] of marks.slice(1).entries()) phases[name] = Number(t) - Number(marks[k][2])
  // From when the script was started (its first mark if that is not known). Its restore moves
  // the restored data in: the restore mark is where it is in place; the quorum mark, healthy.
  const origin = startedAtMs !== undefined ? startedAtMs / 1000 : marks.length ? Number(marks[0][2]) : NaN
  const since = (name: string) => {
    const m = marks.find(([, n]) => n === name)
    return m && Number.isFinite(origin) ? Number(m[2]) - origin : undefined
  }
  const inPlaceSeconds = since('restore')
  const doneSeconds = since('quorum')
  return {
    phases, remoteCommands: Number(out.find((l) => l.startsWith('commands '))?.split(' ')[1] ?? NaN),
    ...(inPlaceSeconds !== undefined ? { inPlaceSeconds } : {}), ...(doneSeconds !== undefined ? { doneSeconds } : {}),
  }
}

/** What the bench reads from etcd-rescue's --report (lib/cli/render.ts reportJson). */
export interface RescueReport {
  exitCode: number
  message: string
  /** When its journal's clock started (ISO time). */
  startedAt: string
  totalSeconds: number
  phases: Array<{ name: string; host: string; seconds: number; outcome: string; endedAt?: string; detail?: string; facts?: { via?: string; sentBytes?: number; zstd?: boolean } }>
  snapshot?: { size: number }
  verification: Array<{ ok: boolean }>
  remoteCommands: Record<string, number>
  peakRssBytes: number
  /** What the run warned about (a lock taken over, a copy retried): what explains an odd round. */
  warnings?: string[]
}

/**
 * One etcd-rescue round from its report: each phase's slowest host, and the
 * time its process spent outside the journal's clock, which the user waits for
 * too: `startup` from its start to the journal's (node, zx, TypeScript loading),
 * `exit` from the journal's end to the process's (report written, connections closed).
 */
export function rescueRound(report: RescueReport, wallSeconds: number, spawnedAtMs: number): Omit<BenchRound, 'round'> {
  const startup = Math.max(0, (Date.parse(report.startedAt) - spawnedAtMs) / 1000)
  const phases: Record<string, number> = { startup }
  for (const p of report.phases) phases[p.name] = Math.max(phases[p.name] ?? 0, p.seconds)
  phases.exit = Math.max(0, wallSeconds - startup - report.totalSeconds)
  // Every member's restored data in place: its last swap (done now, or by an earlier run);
  // known only when every member's swap says so. Verified: the verification's end.
  const swaps = report.phases.filter((p) => p.name === 'swap' && p.endedAt && p.outcome !== 'failed')
  const members = new Set(report.phases.filter((p) => p.name === 'swap' || p.name === 'restore').map((p) => p.host))
  const inPlace = swaps.length && swaps.length >= members.size ? Math.max(...swaps.map((p) => Date.parse(p.endedAt!))) : NaN
  const verified = report.phases.find((p) => p.name === 'verify' && p.outcome === 'ok' && p.endedAt)
  return {
    method: 'etcd-rescue', seconds: wallSeconds, phases,
    ...(Number.isFinite(inPlace) ? { inPlaceSeconds: (inPlace - spawnedAtMs) / 1000 } : {}),
    ...(verified ? { doneSeconds: (Date.parse(verified.endedAt!) - spawnedAtMs) / 1000 } : {}),
    remoteCommands: Object.values(report.remoteCommands).reduce((a, b) => a + b, 0),
    peakRssBytes: report.peakRssBytes,
    note: `verified (${report.verification.length} checks)${compressedNote(report)}${report.warnings?.length ? `; warned: ${warningsInBrief(report.warnings)}` : ''}`,
  }
}

/** How much a compressed copy sent, from the report's facts of the first copy that went so (`; copy zstd: 48 MiB sent (2.4× smaller)`). */
export function compressedNote(report: Pick<RescueReport, 'phases' | 'snapshot'>): string {
  const f = report.phases.find((p) => p.name === 'copy' && p.facts?.zstd && p.facts.sentBytes)?.facts
  if (!f?.sentBytes) return ''
  const size = report.snapshot?.size
  return `; copy zstd: ${formatBytes(f.sentBytes)} sent${size ? ` (${(size / f.sentBytes).toFixed(1)}× smaller)` : ''}`
}

/** Warnings in one short line: the same warning on several hosts once, with the count (`3× …`). */
export function warningsInBrief(warnings: string[]): string {
  const counts = new Map<string, number>()
  for (const w of warnings) {
    const line = w.split('\n')[0].replace(/^[\w.-]+: /, '')
    counts.set(line, (counts.get(line) ?? 0) + 1)
  }
  const cut = (t: string) => (t.length > 90 ? `${t.slice(0, 89)}…` : t)
  return [...counts].map(([line, n]) => `${n > 1 ? `${n}× ` : ''}${cut(line)}`).join(' | ')
}

/** The entry point a user runs (the zx CLI, scripts/recover.mjs), as a process of its own. */
const ZX_CLI = join(REPO_ROOT, 'node_modules', 'zx', 'build', 'cli.js')

/** etcd-rescue as the user runs it: its own process, --yes --plain, a JSON report. Its output goes to a log file. */
async function runRescue(inventory: string, snapshot: string, control: string, r: number, relay?: boolean | 'auto', noCompress?: boolean, cgroup?: string, logsDir?: string): Promise<{ seconds: number; spawnedAtMs: number; report: RescueReport }> {
  const reportFile = join(control, `rescue-${r}.json`)
  const logFile = join(control, `rescue-${r}.log`)
  const out = openSync(logFile, 'w')
  const spawnedAtMs = Date.now()
  const t0 = process.hrtime.bigint()
  const code = await new Promise<number | null>((resolve, reject) => {
    const p = spawn(...inCgroup(cgroup, process.execPath, [ZX_CLI, join(REPO_ROOT, 'scripts', 'recover.mjs'), '-i', inventory, '--snapshot', snapshot, ...(relay === true ? ['--relay'] : relay === false ? ['--no-relay'] : []), ...(noCompress ? ['--no-compress'] : []), '--yes', '--plain', '--report', reportFile]), {
      stdio: ['ignore', out, out], cwd: control,
    })
    p.on('error', reject)
    p.on('close', resolve)
  }).finally(() => closeSync(out))
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  if (logsDir) {
    mkdirSync(logsDir, { recursive: true })
    copyFileSync(logFile, join(logsDir, `rescue-${r}.log`))
    if (existsSync(reportFile)) copyFileSync(reportFile, join(logsDir, `rescue-${r}.json`))
  }
  if (code !== 0) {
    const tail = readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-15).join('\n  ')
    throw new RescueError(`etcd-rescue failed in round ${r} (exit ${code}):\n  ${tail}`)
  }
  return { seconds, spawnedAtMs, report: JSON.parse(readFileSync(reportFile, 'utf8')) as RescueReport }
}

/**
 * The same disaster before every round: each member's etcd killed and its data
 * wrecked; and what earlier rounds left (copied snapshots, journals) removed, so
 * neither method starts with work already done.
 */
async function disaster(members: Member[], pool: HostPool): Promise<void> {
  await Promise.all(members.map(async (m) => {
    const h = pool.get(m.name)
    const parent = posix.dirname(m.dataDir)
    // A unit's etcd killed is started again by Restart= (10 s later, mid-round): killed and left down instead.
    if (m.service === 'systemd') {
      await h.exec(sh`U=${m.serviceName}; systemctl kill -s KILL "$U" 2>/dev/null; systemctl stop "$U" 2>/dev/null; systemctl reset-failed "$U" 2>/dev/null
state=$(systemctl is-active "$U"); case $state in active|activating|reloading|deactivating) echo "$U is still $state after kill and stop" >&2; exit 1 ;; esac`)
    }
    await h.exec(killScript(m.dataDir, memberPorts(m)))
    await h.exec(sh`${wreckScript(m.dataDir)}
D=${m.dataDir}; rm -rf ${`${parent}/.etcd-rescue-${posix.basename(m.dataDir)}`} /var/tmp/snapshot.db "$D".old.* "$D".etcd-rescue-old-*; true`)
  }))
}

/**
 * The baseline for copy speed: the snapshot sent to every host at once with
 * OpenSSH's `ssh HOST 'cat > f'`, the file read once per host. MB/s per host.
 */
async function sshCatThroughput(members: Member[], file: string, control: string): Promise<number> {
  const script = joinScripts([
    ...members.map((m) => sh`${['ssh', '-F', 'none', '-i', m.ssh.privateKeyFile ?? '', '-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${(m.ssh.knownHostsFiles ?? []).join(' ')}`,
      '-p', String(m.ssh.port), '-l', m.ssh.user ?? 'root', m.ssh.host, 'cat > /var/tmp/bench-cat.db; rm -f /var/tmp/bench-cat.db']} < ${file} &`),
    sh`wait`,
  ])
  const f = join(control, 'ssh-cat.sh')
  writeFileSync(f, `${script.text}\n`)
  const t0 = process.hrtime.bigint()
  await runBash(f)
  return statSync(file).size / 1e6 / (Number(process.hrtime.bigint() - t0) / 1e9)
}

const sizeText = (bytes: number) => (bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${mib(bytes)} MiB`)
const medianOf = (r: BenchResult, m: BenchRound['method'], f: (x: BenchRound) => number) => median(r.rounds.filter((x) => x.method === m).map(f))

/** Markdown table of a bench result, for the README. */
export function benchMarkdown(r: BenchResult): string {
  const phaseNames = (m: BenchRound['method']) => [...new Set(r.rounds.filter((x) => x.method === m).flatMap((x) => Object.keys(x.phases)))]
  const phaseLine = (m: BenchRound['method']) => phaseNames(m).map((p) => `${p} ${medianOf(r, m, (x) => x.phases[p] ?? 0).toFixed(1)}`).join(', ')
  const cmds = (m: BenchRound['method']) => medianOf(r, m, (x) => x.remoteCommands)
  const n = r.rounds.filter((x) => x.method === 'manual').length
  // The machine's CPU time in the round (both tools and every lab host share its cores), and the cores that were busy on average.
  const cpu = (m: BenchRound['method']) => {
    const read = r.rounds.filter((x) => x.method === m && x.cpuSeconds !== undefined)
    if (read.length === 0) return '–'
    const s = median(read.map((x) => x.cpuSeconds!))
    const ops = read.filter((x) => x.operatorCpuSeconds !== undefined).map((x) => x.operatorCpuSeconds!)
    return `${s.toFixed(1)} (${median(read.map((x) => x.cpuSeconds! / x.seconds)).toFixed(1)} of ${r.machine.cpus})${ops.length ? `, operator's side ${median(ops).toFixed(1)}` : ''}`
  }
  return [
    `${r.hosts} members, etcd ${r.etcdVersion}${r.systemd ? ' under systemd with TLS (kubespray\'s unit and timeouts)' : ''}, snapshot ${sizeText(r.snapshotBytes)} of ${r.data === 'kube' ? 'Kubernetes-like objects' : 'random values'}${r.noCompress ? ' (etcd-rescue --no-compress)' : ''}, login ${r.login}, link ${r.link}, etcd-rescue ${r.relay}, hosts' disks in ${r.disk === 'disk' ? 'the machine\'s disk' : 'RAM'}; ${n} round(s) each; ${r.machine.cpus} CPUs, ${r.machine.date.slice(0, 10)}`,
    '',
    '| | median (s) | min–max (s) | remote commands | machine CPU, median (s) (cores busy) | per phase, median (s) |',
    '|---|---|---|---|---|---|',
    `| expert by hand (OpenSSH) | ${r.manualMedian.toFixed(2)} | ${r.manualRange[0].toFixed(2)}–${r.manualRange[1].toFixed(2)} | ${cmds('manual')} | ${cpu('manual')} | ${phaseLine('manual')} |`,
    `| etcd-rescue | ${r.rescueMedian.toFixed(2)} | ${r.rescueRange[0].toFixed(2)}–${r.rescueRange[1].toFixed(2)} | ${cmds('etcd-rescue')} | ${cpu('etcd-rescue')} | ${phaseLine('etcd-rescue')} |`,
    '',
    ...inPlaceLines(r),
    `Ratio etcd-rescue / expert: **${r.ratio.toFixed(2)}**. Copy: etcd-rescue ${r.copy.rescueMBps.toFixed(0)} MB/s per host, parallel \`ssh cat\` ${r.copy.sshCatMBps.toFixed(0)} MB/s. etcd-rescue's peak RSS (its own process) ${mib(r.peakRssBytes)} MiB.`,
    '',
  ].join('\n')
}

/**
 * Where each tool had every member's restored data in place, and what came
 * after (start, first election, proof): the first part is the tools' own work;
 * the second is mostly etcd's, and its first election is random.
 */
function inPlaceLines(r: BenchResult): string[] {
  const at = (m: BenchRound['method']) => r.rounds.filter((x) => x.method === m && x.inPlaceSeconds !== undefined && x.doneSeconds !== undefined)
  const manual = at('manual')
  const rescue = at('etcd-rescue')
  if (!manual.length || !rescue.length) return []
  const after = (xs: BenchRound[]) => xs.map((x) => x.doneSeconds! - x.inPlaceSeconds!)
  const line = (xs: BenchRound[]) => `${median(xs.map((x) => x.inPlaceSeconds!)).toFixed(2)} s (${Math.min(...xs.map((x) => x.inPlaceSeconds!)).toFixed(2)}–${Math.max(...xs.map((x) => x.inPlaceSeconds!)).toFixed(2)}), then ${median(after(xs)).toFixed(2)} s (${Math.min(...after(xs)).toFixed(2)}–${Math.max(...after(xs)).toFixed(2)})`
  return [`Every member's restored data in place, median (min–max) from the tool's start: expert ${line(manual)} to healthy; etcd-rescue ${line(rescue)} to verified. In between: starting etcd, its first election (random, up to twice the election timeout) and, for etcd-rescue, the proof.`, '']
}

/**
 * One table of how time grows with members and snapshot size: a row per
 * (members, size), smallest first, each tool's median, the ratio, each tool's
 * time against the first row's, etcd-rescue's peak RSS, commands and copy rate.
 */
export function scaleMarkdown(results: BenchResult[]): string {
  // By the size asked for: two labs' snapshots of one --size differ by a few pages.
  const size = (r: BenchResult) => r.requestedBytes ?? r.snapshotBytes
  const rows = [...results].sort((a, b) => size(a) - size(b) || a.hosts - b.hosts)
  if (rows.length === 0) return ''
  const [first] = rows
  const n = first.rounds.filter((x) => x.method === 'manual').length
  const cmds = (r: BenchResult, m: BenchRound['method']) => medianOf(r, m, (x) => x.remoteCommands)
  return [
    `etcd ${first.etcdVersion}, login ${first.login}, link ${first.link}, median of ${n} round(s) each; ${first.machine.cpus} CPUs, ${first.machine.date.slice(0, 10)}. "× first" is the time against the first row's.`,
    '',
    '| members | snapshot | expert (s) | etcd-rescue (s) | ratio | expert × first | etcd-rescue × first | etcd-rescue peak RSS | remote commands (expert / etcd-rescue) | copy MB/s per host (etcd-rescue / ssh cat) |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.hosts} | ${sizeText(r.snapshotBytes)} | ${r.manualMedian.toFixed(2)} | ${r.rescueMedian.toFixed(2)} | ${r.ratio.toFixed(2)} | ${(r.manualMedian / first.manualMedian).toFixed(2)} | ${(r.rescueMedian / first.rescueMedian).toFixed(2)} | ${mib(r.peakRssBytes)} MiB | ${cmds(r, 'manual')} / ${cmds(r, 'etcd-rescue')} | ${r.copy.rescueMBps.toFixed(0)} / ${r.copy.sshCatMBps.toFixed(0)} |`),
    '',
  ].join('\n')
}

/** Runs the expert's script; resolves with its stdout (the step marks). */
function runBash(file: string, cgroup?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(...inCgroup(cgroup, 'bash', [file]), { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    p.stdout.on('data', (d) => (out += d))
    p.stderr.on('data', (d) => (err += d))
    p.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`manual recovery failed (${code}): ${err.slice(-500)}`))))
  })
}

function relayLabel(relay: boolean | 'auto' | undefined): string {
  return relay === true ? '--relay' : relay === false ? '--no-relay' : 'relay auto'
}

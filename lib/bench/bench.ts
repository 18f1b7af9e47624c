// Recovery time, side by side in one run: the expert's by-hand OpenSSH
// procedure (manual.ts) and etcd-rescue, on the same lab, the same snapshot and
// the same disaster, alternating which goes first each round. Reports medians
// and their ratio. Nothing here asserts a timing: it measures and prints.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadInventory, membersOf, type Member } from '../inventory/members.ts'
import { RescueError } from '../errors.ts'
import { backup } from '../backup/backup.ts'
import { recover } from '../recover/recover.ts'
import { HostPool, connectAll } from '../task/hosts.ts'
import { Journal } from '../task/journal.ts'
import { memberPorts } from '../plan/recovery.ts'
import { posix } from 'node:path'
import { joinScripts, sh } from '../shell/sh.ts'
import { silentUi, type Ui } from '../task/ui.ts'
import { clusterLoad, clusterStart, labDown, labUp } from '../lab/index.ts'
import { killScript, wreckScript } from '../drill/disaster.ts'
import { labLink, labLogin, type Login } from '../lab/shape.ts'
import { manualScript } from './manual.ts'

export interface BenchOptions {
  hosts: number
  etcd: string
  keys: number
  rounds: number
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
  note: string
}

export interface BenchResult {
  hosts: number
  login: Login
  link: string
  /** etcd-rescue's relay setting in this bench. */
  relay: string
  machine: { cpus: number; date: string }
  /** The bench process's peak RSS: an upper bound for etcd-rescue's own (it runs in this process). */
  peakRssBytes: number
  /** Each member's copy throughput against parallel `ssh HOST 'cat > f'` of the same file. */
  copy: { rescueMBps: number; sshCatMBps: number }
  manualRange: [number, number]
  rescueRange: [number, number]
  etcdVersion: string
  snapshotBytes: number
  keys: number
  rounds: BenchRound[]
  manualMedian: number
  rescueMedian: number
  /** etcd-rescue time / manual time: below 1 means etcd-rescue is faster. */
  ratio: number
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

export async function bench(o: BenchOptions): Promise<BenchResult> {
  const lab = await labUp({ name: `bench${Math.random().toString(36).slice(2, 5)}`, hosts: o.hosts, etcd: o.etcd, disk: '4G' })
  const login = o.login ?? 'fast'
  const control = mkdtempSync(join(tmpdir(), 'etcd-rescue-bench-'))
  const pool = new HostPool()
  try {
    o.log(`lab ${lab.name}: ${o.hosts} hosts, etcd ${lab.state.etcd.version}`)
    await clusterStart(lab)
    const load = await clusterLoad(lab, { keys: o.keys })
    o.log(`loaded ${load.keys} keys (${(load.bytes / 2 ** 20).toFixed(0)} MiB)`)
    const members = membersOf(loadInventory(lab.paths.inventory)).members
    const snap = await backup({ members, outDir: join(control, 'backup'), ui: o.ui })
    o.log(`snapshot ${(snap.snapshot.size / 2 ** 20).toFixed(0)} MiB at revision ${snap.revision}`)
    await connectAll(members, pool, o.ui, new Journal(), {}, members.length)
    // Conditions after the set-up, so loading and the backup are not what is measured.
    if (login !== 'fast') await labLogin(lab, login)
    if (o.link) await labLink(lab, o.link)
    o.log(`conditions: login ${login}, link ${o.link ?? 'unlimited'}`)
    const sshCatMBps = await sshCatThroughput(members, snap.file, control)
    o.log(`parallel ssh cat of the snapshot to every host: ${sshCatMBps.toFixed(0)} MB/s per host`)
    const copyRates: number[] = []

    const rounds: BenchRound[] = []
    for (let r = 1; r <= o.rounds; r++) {
      const order: Array<BenchRound['method']> = r % 2 ? ['manual', 'etcd-rescue'] : ['etcd-rescue', 'manual']
      for (const method of order) {
        await disaster(members, pool)
        const t0 = process.hrtime.bigint()
        let note: string
        let remoteCommands: number
        const phases: Record<string, number> = {}
        if (method === 'manual') {
          const script = manualScript({
            members, snapshot: snap.file, binDir: lab.state.etcd.binDir, token: `manual-${r}`, controlDir: control,
            restoreWith: lab.state.etcd.version.startsWith('3.4') ? 'etcdctl' : 'etcdutl',
          })
          const file = join(control, `manual-${r}.sh`)
          writeFileSync(file, script)
          const out = (await runBash(file)).split('\n')
          const marks = out.filter((l) => l.startsWith('mark ')).map((l) => l.split(' '))
          for (const [k, [, name, t]] of marks.slice(1).entries()) phases[name] = Number(t) - Number(marks[k][2])
          remoteCommands = Number(out.find((l) => l.startsWith('commands '))?.split(' ')[1] ?? NaN)
          note = 'healthy (health only)'
        } else {
          const res = await recover({ inventory: lab.paths.inventory, snapshot: snap.file, relay: o.relay ?? 'auto', ui: silentUi() })
          if (res.exitCode !== 0) throw new RescueError(`etcd-rescue failed in round ${r}: ${res.message}`)
          // Where the time went: each phase's longest host.
          for (const rec of res.journal.records) phases[rec.phase] = Math.max(phases[rec.phase] ?? 0, rec.seconds)
          remoteCommands = Object.values(res.remoteCommands).reduce((a, b) => a + b, 0)
          if (phases.copy) copyRates.push(snap.snapshot.size / 1e6 / phases.copy)
          note = `verified (${res.checks.length} checks)`
        }
        const seconds = Number(process.hrtime.bigint() - t0) / 1e9
        rounds.push({ round: r, method, seconds, phases, remoteCommands, note })
        o.log(`round ${r}: ${method.padEnd(11)} ${seconds.toFixed(2)} s  ${note}; ${remoteCommands} remote commands; ${Object.entries(phases).map(([p, t]) => `${p} ${t.toFixed(1)}`).join(', ')}`)
      }
    }
    const times = (m: BenchRound['method']) => rounds.filter((x) => x.method === m).map((x) => x.seconds)
    const manualMedian = median(times('manual'))
    const rescueMedian = median(times('etcd-rescue'))
    return {
      hosts: o.hosts, login, link: o.link ?? 'unlimited', relay: relayLabel(o.relay), machine: { cpus: cpus().length, date: new Date().toISOString() },
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
      copy: { rescueMBps: median(copyRates), sshCatMBps },
      manualRange: [Math.min(...times('manual')), Math.max(...times('manual'))],
      rescueRange: [Math.min(...times('etcd-rescue')), Math.max(...times('etcd-rescue'))],
      etcdVersion: lab.state.etcd.version, snapshotBytes: snap.snapshot.size, keys: load.keys,
      rounds, manualMedian, rescueMedian, ratio: rescueMedian / manualMedian,
    }
  } finally {
    pool.closeAll()
    if (!o.keepLab) await labDown({ name: lab.name })
    rmSync(control, { recursive: true, force: true })
  }
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

/** Markdown table of a bench result, for the README. */
export function benchMarkdown(r: BenchResult): string {
  const phaseNames = (m: BenchRound['method']) => [...new Set(r.rounds.filter((x) => x.method === m).flatMap((x) => Object.keys(x.phases)))]
  const phaseLine = (m: BenchRound['method']) => phaseNames(m).map((p) => `${p} ${median(r.rounds.filter((x) => x.method === m).map((x) => x.phases[p] ?? 0)).toFixed(1)}`).join(', ')
  const cmds = (m: BenchRound['method']) => median(r.rounds.filter((x) => x.method === m).map((x) => x.remoteCommands))
  return [
    `${r.hosts} members, etcd ${r.etcdVersion}, snapshot ${(r.snapshotBytes / 2 ** 20).toFixed(0)} MiB, login ${r.login}, link ${r.link}, etcd-rescue ${r.relay}; ${r.machine.cpus} CPUs, ${r.machine.date.slice(0, 10)}`,
    '',
    '| | median (s) | min–max (s) | remote commands | per phase, median (s) |',
    '|---|---|---|---|---|',
    `| expert by hand (OpenSSH) | ${r.manualMedian.toFixed(2)} | ${r.manualRange[0].toFixed(2)}–${r.manualRange[1].toFixed(2)} | ${cmds('manual')} | ${phaseLine('manual')} |`,
    `| etcd-rescue | ${r.rescueMedian.toFixed(2)} | ${r.rescueRange[0].toFixed(2)}–${r.rescueRange[1].toFixed(2)} | ${cmds('etcd-rescue')} | ${phaseLine('etcd-rescue')} |`,
    '',
    `Ratio etcd-rescue / expert: **${r.ratio.toFixed(2)}**. Copy: etcd-rescue ${r.copy.rescueMBps.toFixed(0)} MB/s per host, parallel \`ssh cat\` ${r.copy.sshCatMBps.toFixed(0)} MB/s. Bench process peak RSS ${(r.peakRssBytes / 2 ** 20).toFixed(0)} MiB.`,
    '',
  ].join('\n')
}

/** Runs the expert's script; resolves with its stdout (the step marks). */
function runBash(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn('bash', [file], { stdio: ['ignore', 'pipe', 'pipe'] })
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

// Recovery time, side by side in one run: the expert's by-hand OpenSSH
// procedure (manual.ts) and etcd-rescue, on the same lab, the same snapshot and
// the same disaster, alternating which goes first each round. Reports medians
// and their ratio. Nothing here asserts a timing: it measures and prints.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadInventory, membersOf, type Member } from '../inventory/members.ts'
import { RescueError } from '../errors.ts'
import { backup } from '../backup/backup.ts'
import { recover } from '../run/recover.ts'
import { HostPool, connectAll } from '../run/hosts.ts'
import { Journal } from '../run/journal.ts'
import { memberPorts } from '../plan/recovery.ts'
import { posix } from 'node:path'
import { sh } from '../shell/sh.ts'
import { silentUi, type Ui } from '../run/ui.ts'
import { clusterLoad, clusterStart, labDown, labUp } from '../lab/index.ts'
import { killScript, wreckScript } from '../drill/disaster.ts'
import { manualScript } from './manual.ts'

export interface BenchOptions {
  hosts: number
  etcd: string
  keys: number
  rounds: number
  ui: Ui
  keepLab?: boolean
  log: (line: string) => void
}

export interface BenchRound {
  round: number
  method: 'manual' | 'etcd-rescue'
  seconds: number
  note: string
}

export interface BenchResult {
  hosts: number
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

    const rounds: BenchRound[] = []
    for (let r = 1; r <= o.rounds; r++) {
      const order: Array<BenchRound['method']> = r % 2 ? ['manual', 'etcd-rescue'] : ['etcd-rescue', 'manual']
      for (const method of order) {
        await disaster(members, pool)
        const t0 = process.hrtime.bigint()
        let note: string
        if (method === 'manual') {
          const script = manualScript({
            members, snapshot: snap.file, binDir: lab.state.etcd.binDir, token: `manual-${r}`, controlDir: control,
            restoreWith: lab.state.etcd.version.startsWith('3.4') ? 'etcdctl' : 'etcdutl',
          })
          const file = join(control, `manual-${r}.sh`)
          writeFileSync(file, script)
          const marks = (await runBash(file)).split('\n').filter((l) => l.startsWith('mark ')).map((l) => l.split(' '))
          const steps = marks.slice(1).map(([, name, t], k) => `${name} ${(Number(t) - Number(marks[k][2])).toFixed(1)}`)
          note = `healthy (health only); ${steps.join(', ')}`
        } else {
          const res = await recover({ inventory: lab.paths.inventory, snapshot: snap.file, ui: silentUi() })
          if (res.exitCode !== 0) throw new RescueError(`etcd-rescue failed in round ${r}: ${res.message}`)
          // Where the time went: each phase's longest host.
          const phases = new Map<string, number>()
          for (const rec of res.journal.records) phases.set(rec.phase, Math.max(phases.get(rec.phase) ?? 0, rec.seconds))
          note = `verified (${res.checks.length} checks); ${[...phases].map(([p, t]) => `${p} ${t.toFixed(1)}`).join(', ')}`
        }
        const seconds = Number(process.hrtime.bigint() - t0) / 1e9
        rounds.push({ round: r, method, seconds, note })
        o.log(`round ${r}: ${method.padEnd(11)} ${seconds.toFixed(2)} s  ${note}`)
      }
    }
    const manualMedian = median(rounds.filter((x) => x.method === 'manual').map((x) => x.seconds))
    const rescueMedian = median(rounds.filter((x) => x.method === 'etcd-rescue').map((x) => x.seconds))
    return {
      hosts: o.hosts, etcdVersion: lab.state.etcd.version, snapshotBytes: snap.snapshot.size, keys: load.keys,
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

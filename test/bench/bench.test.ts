// The bench's option parsing and tables. No timings asserted: the numbers are made up.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { InputError } from '../../lib/errors.ts'
import { parseBenchArgs, parseSize } from '../../lib/cli/bench.ts'
import { BENCH_DISK_DIR, benchMarkdown, cpuSecondsBetween, cpuText, inCgroup, labDisk, ownCgroupPath, parseCgroupUsage, parseCpuTicks, manualMarks, rescueRound, scaleMarkdown, warningsInBrief, type BenchResult, type BenchRound } from '../../lib/bench/bench.ts'
import { FILL_OVERHEAD, FILL_VALUE_BYTES, fillKeys } from '../../lib/bench/fill.ts'

const MiB = 2 ** 20
const GiB = 2 ** 30

describe('parseBenchArgs', () => {
  it('defaults to one run: 5 hosts, the varied load, 3 rounds, disks chosen by size', () => {
    const a = parseBenchArgs([])
    expect(a.cells).toEqual([{ hosts: 5 }])
    expect(a).toMatchObject({ scale: false, rounds: 3, keys: 10_000, etcd: '3.5.30', help: false, keepLab: false })
    expect(a.diskDir).toBeUndefined()
  })

  it('takes the issue\'s options', () => {
    const a = parseBenchArgs(['--hosts', '7', '--size', '1GB', '--link', '100mbit', '--login', 'busy', '--rounds', '1', '--json', 'r.json', '--markdown', 'r.md'])
    expect(a.cells).toEqual([{ hosts: 7, sizeBytes: GiB }])
    expect(a).toMatchObject({ scale: false, link: '100mbit', login: 'busy', rounds: 1, json: 'r.json', markdown: 'r.md' })
  })

  it('--systemd makes kubespray-like hosts, with any --login; --logs keeps etcd-rescue\'s rounds', () => {
    expect(parseBenchArgs([])).toMatchObject({ systemd: false })
    expect(parseBenchArgs([]).logsDir).toBeUndefined()
    expect(parseBenchArgs(['--systemd', '--login', 'slow', '--logs', '/tmp/l'])).toMatchObject({ systemd: true, login: 'slow', logsDir: '/tmp/l' })
  })

  it('--data kube fills with Kubernetes-like objects; --no-compress passes on to etcd-rescue; both checked', () => {
    expect(parseBenchArgs([])).toMatchObject({ data: 'random', noCompress: false })
    expect(parseBenchArgs(['--data', 'kube', '--no-compress', '--size', '200MB'])).toMatchObject({ data: 'kube', noCompress: true, cells: [{ hosts: 5, sizeBytes: 200 * MiB }] })
    expect(() => parseBenchArgs(['--data', 'json'])).toThrow(/--data is random or kube, not "json"/)
    expect(() => parseBenchArgs(['--data', 'kube', '--keys', '100'])).toThrow(InputError)
  })

  it('--scale is the matrix 3,5,7 hosts × 100MB,1GB, sizes outer', () => {
    const a = parseBenchArgs(['--scale'])
    expect(a.scale).toBe(true)
    expect(a.cells).toEqual([
      { hosts: 3, sizeBytes: 100 * MiB }, { hosts: 5, sizeBytes: 100 * MiB }, { hosts: 7, sizeBytes: 100 * MiB },
      { hosts: 3, sizeBytes: GiB }, { hosts: 5, sizeBytes: GiB }, { hosts: 7, sizeBytes: GiB },
    ])
  })

  it('lists of hosts or sizes make a matrix too, and replace their part of --scale', () => {
    expect(parseBenchArgs(['--hosts', '3,7', '--size', '100MB']).cells).toEqual([{ hosts: 3, sizeBytes: 100 * MiB }, { hosts: 7, sizeBytes: 100 * MiB }])
    expect(parseBenchArgs(['--hosts', '3,7']).scale).toBe(true)
    expect(parseBenchArgs(['--scale', '--hosts', '5']).cells).toEqual([{ hosts: 5, sizeBytes: 100 * MiB }, { hosts: 5, sizeBytes: GiB }])
    expect(parseBenchArgs(['--scale', '--keys', '1000']).cells).toEqual([{ hosts: 3 }, { hosts: 5 }, { hosts: 7 }])
  })

  it('--disk-dir: a directory, or ram for tmpfs', () => {
    expect(parseBenchArgs(['--disk-dir', '/var/tmp/x']).diskDir).toBe('/var/tmp/x')
    expect(parseBenchArgs(['--disk-dir', 'ram']).diskDir).toBeNull()
  })

  it('refuses bad input with an InputError naming the flag', () => {
    for (const [argv, msg] of [
      [['--hosts', '10'], /--hosts/], [['--hosts', '3,x'], /--hosts/], [['--size', 'huge'], /--size/], [['--size', '0MB'], /--size/],
      [['--login', 'lazy'], /--login/], [['--link', '100'], /--link/], [['--rounds', '0'], /--rounds/],
      [['--size', '1GB', '--keys', '10'], /exclude/], [['--disk-dir', 'rel/dir'], /--disk-dir/], [['--frobnicate'], /frobnicate/],
    ] as Array<[string[], RegExp]>) {
      expect(() => parseBenchArgs(argv), argv.join(' ')).toThrow(InputError)
      expect(() => parseBenchArgs(argv), argv.join(' ')).toThrow(msg)
    }
  })
})

describe('parseSize / fillKeys / labDisk', () => {
  it('reads MB and GB (both binary) and decimals', () => {
    expect(parseSize('100MB')).toBe(100 * MiB)
    expect(parseSize('1GB')).toBe(GiB)
    expect(parseSize('1.5GiB')).toBe(1.5 * GiB)
    expect(parseSize('512mib')).toBe(512 * MiB)
  })

  it('fills with enough large values for a snapshot of about the size (bbolt adds its overhead)', () => {
    expect(fillKeys(GiB) * FILL_VALUE_BYTES * FILL_OVERHEAD).toBeGreaterThan(0.99 * GiB)
    expect(fillKeys(GiB) * FILL_VALUE_BYTES * FILL_OVERHEAD).toBeLessThan(1.01 * GiB)
    expect(fillKeys(1)).toBe(1)
  })

  it('keeps small labs in RAM and puts 1 GB × 7 hosts on the machine\'s disk', () => {
    const ram = 23 * GiB
    expect(labDisk(5, 120 * MiB, ram)).toEqual({ disk: '4G' })
    expect(labDisk(1, GiB, 64 * GiB)).toEqual({ disk: '6G' })
    expect(labDisk(3, GiB, ram).diskDir).toBe(BENCH_DISK_DIR)
    expect(labDisk(7, GiB, ram)).toEqual({ disk: '4G', diskDir: BENCH_DISK_DIR })
  })
})

describe('round parsing', () => {
  it('reads the expert\'s marks as seconds per step and its command count', () => {
    const r = manualMarks(['mark begin 100.0', 'mark copy 102.5', 'mark stop 103.0', 'commands 21', 'noise'])
    expect(r.phases).toEqual({ copy: 2.5, stop: 0.5 })
    expect(r.remoteCommands).toBe(21)
    // No restore mark: where the data was in place is not known.
    expect(r.inPlaceSeconds).toBeUndefined()
  })

  it('takes the expert\'s restore mark as every member\'s data in place and its quorum mark as healthy, from its start', () => {
    const out = ['mark begin 100.0', 'mark copy 102.5', 'mark stop 103.0', 'mark restore 103.75', 'mark start 104.5', 'mark quorum 105.25', 'commands 21']
    const r = manualMarks(out, 99_980)
    expect(r.inPlaceSeconds).toBeCloseTo(3.77, 6)
    expect(r.doneSeconds).toBeCloseTo(5.27, 6)
    // Without the start time: from its first mark.
    expect(manualMarks(out).inPlaceSeconds).toBeCloseTo(3.75, 6)
  })

  it('takes etcd-rescue\'s last swap as every member\'s data in place, seconds from its spawn', () => {
    const spawned = Date.parse('2026-11-25T18:00:00.000Z')
    const report = {
      exitCode: 0, message: '', startedAt: '2026-11-25T18:00:00.300Z', totalSeconds: 4,
      phases: [
        { name: 'restore', host: 'a', seconds: 0.5, outcome: 'ok', endedAt: '2026-11-25T18:00:02.700Z' },
        { name: 'restore', host: 'b', seconds: 0.5, outcome: 'skipped', endedAt: '2026-11-25T18:00:02.800Z' },
        { name: 'swap', host: 'a', seconds: 0.1, outcome: 'ok', endedAt: '2026-11-25T18:00:02.900Z' },
        { name: 'swap', host: 'b', seconds: 0.1, outcome: 'skipped', endedAt: '2026-11-25T18:00:03.100Z' },
        { name: 'start', host: 'b', seconds: 0.1, outcome: 'ok', endedAt: '2026-11-25T18:00:03.400Z' },
        { name: 'verify', host: 'cluster', seconds: 0.1, outcome: 'ok', endedAt: '2026-11-25T18:00:04.250Z' },
      ],
      verification: [{ ok: true }], remoteCommands: { a: 1, b: 1 }, peakRssBytes: MiB,
    }
    const r = rescueRound(report, 4.5, spawned)
    expect(r.inPlaceSeconds).toBeCloseTo(3.1, 6)
    expect(r.doneSeconds).toBeCloseTo(4.25, 6)
    expect(rescueRound({ ...report, phases: [] }, 4.5, spawned).inPlaceSeconds).toBeUndefined()
    // One member's swap missing: not every member's data is known to be in place.
    expect(rescueRound({ ...report, phases: report.phases.filter((p) => !(p.name === 'swap' && p.host === 'b')) }, 4.5, spawned).inPlaceSeconds).toBeUndefined()
  })

  it('reads etcd-rescue\'s report: slowest host per phase, startup and exit outside its clock, commands summed, its own RSS', () => {
    const spawned = Date.parse('2026-11-25T18:00:00.000Z')
    const r = rescueRound({
      exitCode: 0, message: '', startedAt: '2026-11-25T18:00:01.000Z', totalSeconds: 8,
      phases: [{ name: 'copy', host: 'a', seconds: 2, outcome: 'ok' }, { name: 'copy', host: 'b', seconds: 3, outcome: 'ok' }, { name: 'stop', host: 'a', seconds: 1, outcome: 'ok' }],
      verification: [{ ok: true }, { ok: true }], remoteCommands: { a: 7, b: 8 }, peakRssBytes: 150 * MiB,
    }, 9.5, spawned)
    expect(r.phases).toEqual({ startup: 1, copy: 3, stop: 1, exit: 0.5 })
    expect(r).toMatchObject({ method: 'etcd-rescue', seconds: 9.5, remoteCommands: 15, peakRssBytes: 150 * MiB, note: 'verified (2 checks)' })
  })

  it('says in the round\'s note how much a compressed copy sent', () => {
    const r = rescueRound({
      exitCode: 0, message: '', startedAt: '2026-11-25T18:00:01.000Z', totalSeconds: 8,
      // Read from the facts, not the text people read (which says something else here on purpose).
      phases: [
        { name: 'copy', host: 'a', seconds: 2, outcome: 'ok', detail: 'in place', facts: { via: 'in-place' } },
        { name: 'copy', host: 'b', seconds: 2, outcome: 'ok', detail: '115 MiB in 1.4 s', facts: { via: 'direct', sentBytes: 48 * MiB, zstd: true } },
      ],
      snapshot: { size: 115.2 * MiB },
      verification: [{ ok: true }], remoteCommands: { a: 1 }, peakRssBytes: MiB,
    }, 9.5, Date.parse('2026-11-25T18:00:00.000Z'))
    expect(r.note).toBe('verified (1 checks); copy zstd: 48 MiB sent (2.4× smaller)')
    // A plain copy says nothing of it.
    expect(rescueRound({
      exitCode: 0, message: '', startedAt: '2026-11-25T18:00:01.000Z', totalSeconds: 8,
      phases: [{ name: 'copy', host: 'a', seconds: 2, outcome: 'ok', facts: { via: 'direct', sentBytes: 115 * MiB, zstd: false } }],
      snapshot: { size: 115 * MiB }, verification: [{ ok: true }], remoteCommands: { a: 1 }, peakRssBytes: MiB,
    }, 9.5, Date.parse('2026-11-25T18:00:00.000Z')).note).toBe('verified (1 checks)')
  })

  it('names what the run warned about in the round\'s note: what explains an odd round', () => {
    const r = rescueRound({
      exitCode: 0, message: '', startedAt: '2026-11-25T18:00:01.000Z', totalSeconds: 8, phases: [],
      verification: [{ ok: true }], remoteCommands: { a: 2 }, peakRssBytes: MiB,
      warnings: ['a: taking over the lock of an earlier run from this machine that is gone\n  holder: x'],
    }, 9.5, Date.parse('2026-11-25T18:00:00.000Z'))
    expect(r.note).toBe('verified (1 checks); warned: taking over the lock of an earlier run from this machine that is gone')
  })

  it('says a warning repeated on every host once, with the count, and cuts long ones short', () => {
    const same = ['etcd1', 'etcd2', 'etcd3'].map((h) => `${h}: what its data dir holds could not be read (member/snap/db: not a tree page (flags 0)); it is restored like the others`)
    expect(warningsInBrief([...same, 'etcd2: copy retry 1 of 2 in 1 s'])).toBe(
      '3× what its data dir holds could not be read (member/snap/db: not a tree page (flags 0)); it… | copy retry 1 of 2 in 1 s')
  })
})

function result(hosts: number, snapshotBytes: number, manual: number, rescue: number): BenchResult {
  const rounds: BenchRound[] = [
    { round: 1, method: 'manual', seconds: manual, phases: { copy: 1, quorum: 0.5 }, remoteCommands: 4 * hosts + 1, note: '' },
    { round: 1, method: 'etcd-rescue', seconds: rescue, phases: { startup: 0.8, copy: 1.2 }, remoteCommands: 7 * hosts, peakRssBytes: 120 * MiB, note: '' },
  ]
  return {
    hosts, data: 'random', noCompress: false, login: 'fast', link: 'unlimited', relay: 'auto', machine: { cpus: 2, date: '2026-11-25T18:00:00Z' }, disk: 'ram', peakRssBytes: 120 * MiB,
    copy: { rescueMBps: 40, sshCatMBps: 38 }, manualRange: [manual, manual], rescueRange: [rescue, rescue], etcdVersion: '3.5.30',
    snapshotBytes, keys: 10, rounds, manualMedian: manual, rescueMedian: rescue, ratio: rescue / manual,
  }
}

describe('benchMarkdown', () => {
  it('shows both methods with median, range, commands and phases, then ratio, copy and etcd-rescue\'s own RSS', () => {
    const md = benchMarkdown(result(5, 120 * MiB, 5, 4))
    expect(md).toContain('5 members, etcd 3.5.30, snapshot 120 MiB of random values, login fast, link unlimited, etcd-rescue auto, hosts\' disks in RAM; 1 round(s) each')
    expect(md).toContain('| expert by hand (OpenSSH) | 5.00 | 5.00–5.00 | 21 | – | copy 1.0, quorum 0.5 |')
    expect(md).toContain('| etcd-rescue | 4.00 | 4.00–4.00 | 35 | – | startup 0.8, copy 1.2 |')
    expect(md).toContain('Ratio etcd-rescue / expert: **0.80**')
    expect(md).toContain("etcd-rescue's peak RSS (its own process) 120 MiB")
  })

  it('says where each method had the data in place and how long the rest took, when both rounds say', () => {
    const r = result(5, 120 * MiB, 5, 4)
    expect(benchMarkdown(r)).not.toContain('restored data in place')
    r.rounds = [{ ...r.rounds[0], inPlaceSeconds: 2.5, doneSeconds: 4.75 }, { ...r.rounds[1], inPlaceSeconds: 2.75, doneSeconds: 3.75 }]
    expect(benchMarkdown(r)).toContain("Every member's restored data in place, median (min–max) from the tool's start: expert 2.50 s (2.50–2.50), then 2.25 s (2.25–2.25) to healthy; etcd-rescue 2.75 s (2.75–2.75), then 1.00 s (1.00–1.00) to verified.")
  })

  it('gives each method\'s machine CPU time and the cores it kept busy, median of the rounds that read it', () => {
    const r = result(5, 120 * MiB, 5, 4)
    r.rounds = [
      { ...r.rounds[0], cpuSeconds: 9.5, operatorCpuSeconds: 2.5 },
      { ...r.rounds[1], cpuSeconds: 6, operatorCpuSeconds: 1 },
      { ...r.rounds[0], round: 2, cpuSeconds: 8.5, operatorCpuSeconds: 1.5, seconds: 4 },
      { ...r.rounds[1], round: 2 },
    ]
    const md = benchMarkdown(r)
    expect(md).toContain('| machine CPU, median (s) (cores busy) |')
    // Expert: 9.5 s in 5 s (1.9 cores) and 8.5 s in 4 s (2.125): medians 9.0 s and 2.0125.
    expect(md).toMatch(/\| expert by hand \(OpenSSH\) \| [^|]+\| [^|]+\| 21 \| 9\.0 \(2\.0 of 2\), operator's side 2\.0 \|/)
    // etcd-rescue: only round 1 read it.
    expect(md).toMatch(/\| etcd-rescue \| [^|]+\| [^|]+\| 35 \| 6\.0 \(1\.5 of 2\), operator's side 1\.0 \|/)
  })
})

describe('CPU accounting', () => {
  const stat = (user: number, idle: number, iowait = 0, steal = 0) =>
    `cpu  ${user} 10 200 ${idle} ${iowait} 0 30 ${steal} 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\nintr 12345\n`

  it('reads /proc/stat\'s aggregate line: busy is user, nice, system, irq and softirq; steal is neither busy nor idle', () => {
    expect(parseCpuTicks(stat(1000, 5000, 40, 2))).toEqual({ busy: 1000 + 10 + 200 + 30, idle: 5040 })
  })

  it('finds the bench\'s own cgroup2 path, on hybrid and pure cgroup2 machines', () => {
    expect(ownCgroupPath('4:memory:/x\n1:cpu:/\n0::/\n')).toBe('/')
    expect(ownCgroupPath('0::/user.slice/user-0.slice/session-3.scope\n')).toBe('/user.slice/user-0.slice/session-3.scope')
    expect(ownCgroupPath('1:cpu:/\n')).toBeUndefined()
  })

  it('takes an older kernel\'s shorter line, and refuses what is not one', () => {
    expect(parseCpuTicks('cpu 1 2 3 4\n')).toEqual({ busy: 6, idle: 4 })
    expect(parseCpuTicks('cpu0 1 2 3 4\n')).toBeUndefined()
    expect(parseCpuTicks('cpu 1 x 3 4\n')).toBeUndefined()
    expect(parseCpuTicks('')).toBeUndefined()
  })

  it('counts busy seconds between two readings (USER_HZ 100), and nothing without both', () => {
    expect(cpuSecondsBetween(parseCpuTicks(stat(1000, 5000)), parseCpuTicks(stat(1640, 5100)))).toBeCloseTo(6.4)
    expect(cpuSecondsBetween(undefined, parseCpuTicks(stat(1, 1)))).toBeUndefined()
  })

  it('says it in the round\'s line as time and cores busy, split by side when the operator\'s was counted, or not at all', () => {
    expect(cpuText({ cpuSeconds: 6.4, seconds: 3.2 }, 2)).toBe('; CPU 6.4 s, 2.0 of 2 cores busy')
    expect(cpuText({ cpuSeconds: 6.4, operatorCpuSeconds: 1.5, seconds: 3.2 }, 2)).toBe("; CPU 6.4 s (operator's side 1.5, hosts and kernel 4.9), 2.0 of 2 cores busy")
    expect(cpuText({ seconds: 3.2 }, 2)).toBe('')
  })

  it('reads a cgroup\'s CPU time from its cpu.stat', () => {
    expect(parseCgroupUsage('usage_usec 1234567\nuser_usec 1000000\nsystem_usec 234567\n')).toBeCloseTo(1.234567)
    expect(parseCgroupUsage('user_usec 5\n')).toBeUndefined()
  })

  it('starts a tool in the operator\'s cgroup: it writes its own PID there, then becomes the command', async () => {
    expect(inCgroup(undefined, 'bash', ['f'])).toEqual(['bash', ['f']])
    // A directory standing in for the cgroup: cgroup.procs is a plain file here.
    const dir = mkdtempSync(join(tmpdir(), 'bench-cgroup-'))
    try {
      writeFileSync(join(dir, 'cgroup.procs'), '')
      const [cmd, args] = inCgroup(dir, 'sh', ['-c', 'echo "pid $$ args $*"', 'x', 'a b', 'c'])
      const out = execFileSync(cmd, args, { encoding: 'utf8' })
      const pid = readFileSync(join(dir, 'cgroup.procs'), 'utf8').trim()
      expect(out).toBe(`pid ${pid} args a b c\n`)
      // Where the cgroup cannot be entered, nothing runs.
      const [cmd2, args2] = inCgroup(join(dir, 'missing'), 'sh', ['-c', 'echo ran'])
      expect(() => execFileSync(cmd2, args2, { encoding: 'utf8', stdio: 'pipe' })).toThrow()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('scaleMarkdown', () => {
  it('one row per run, smallest first, with growth against the first row', () => {
    const md = scaleMarkdown([result(7, GiB, 40, 30), result(3, 100 * MiB, 4, 5), result(7, 100 * MiB, 8, 6)])
    const rows = md.split('\n').filter((l) => /^\| \d/.test(l))
    expect(rows).toEqual([
      '| 3 | 100 MiB | 4.00 | 5.00 | 1.25 | 1.00 | 1.00 | 120 MiB | 13 / 21 | 40 / 38 |',
      '| 7 | 100 MiB | 8.00 | 6.00 | 0.75 | 2.00 | 1.20 | 120 MiB | 29 / 49 | 40 / 38 |',
      '| 7 | 1.00 GiB | 40.00 | 30.00 | 0.75 | 10.00 | 6.00 | 120 MiB | 29 / 49 | 40 / 38 |',
    ])
    expect(md).toContain('| members | snapshot |')
  })

  it('orders by the size asked for, not the few pages two labs\' snapshots differ by', () => {
    const a = { ...result(5, 66 * MiB, 4, 5), requestedBytes: 64 * MiB }
    const b = { ...result(3, 66 * MiB + 4096, 4, 5), requestedBytes: 64 * MiB }
    expect(scaleMarkdown([a, b]).split('\n').filter((l) => /^\| \d/.test(l)).map((l) => l.slice(0, 4))).toEqual(['| 3 ', '| 5 '])
  })

  it('is empty for no runs', () => {
    expect(scaleMarkdown([])).toBe('')
  })
})

// `bench`: recovery time of etcd-rescue against an expert by hand, side by side;
// with several --hosts or --size (or --scale), the matrix and one table of how time grows.
import { writeFileSync } from 'node:fs'
import { ExitCode, InputError, formatError } from '../errors.ts'
import { createUi } from '../task/ui.ts'
import { bench, benchMarkdown, scaleMarkdown, type BenchResult } from '../bench/bench.ts'
import { LOGINS, parseRate, type Login } from '../lab/shape.ts'
import { intFlag, parseFlags } from './args.ts'
import { relayFlag } from './recover.ts'

export const BENCH_HELP = `Usage: npm run bench -- [options]
       npx zx scripts/bench.mjs [options]

Measures recovery time on a lab (needs root): the same snapshot and the same
disaster, recovered alternately by an expert's by-hand OpenSSH procedure (every
step parallel, multiplexed connections, etcd stopped with TERM and a wait, or
with systemctl, health polled every 0.5 s) and by etcd-rescue run as a user runs
it (scripts/recover.mjs, its own process, which also copies with verification
and proves the result).
Prints every round, medians, min and max, the ratio etcd-rescue / expert, time per
phase for both, remote command starts, copy throughput against parallel
\`ssh HOST 'cat > f'\`, etcd-rescue's own peak RSS (from its report), and the
machine's CPU time in each round (/proc/stat: the lab's hosts share its cores,
so a round whose cores were all busy computed; one with idle cores waited), and
of it the operator's side (each tool's process tree, run in a cgroup of its own;
the rest is the hosts', the kernel's network work, and anything else running).

Options:
  --hosts N[,N…]   lab hosts, 1 to 9 (default: 5); several: one lab each
  --size SIZE[,…]  snapshot size, e.g. 100MB or 1GB (MB = MiB): the cluster is
                   filled with large incompressible values; several: one lab each
  --scale          the matrix --hosts 3,5,7 --size 100MB,1GB (either may be given
                   to replace its part); prints one table of how time grows
  --keys N         instead of --size: keys of the lab's varied load
                   (default: 10000, ≈120 MiB)
  --data KIND      random (default): values as above, which no compressor
                   shrinks; kube: Kubernetes-like objects as the API server
                   stores them (protobuf envelope, labels, last-applied JSON
                   on applied kinds, managedFields; one in ten an encrypted
                   Secret, one Secret in three a Helm release) up to --size
                   (default 120 MiB), whose snapshot zstd -1 shrinks 2.8x
  --no-compress    etcd-rescue with --no-compress (its copies never zstd-
                   compressed), to see what compression does
  --etcd VERSION   3.4.23, 3.5.16 or 3.5.30 (default: 3.5.30)
  --rounds N       rounds per method (default: 3)
  --login KIND     hosts' login shell cost for every remote command: fast,
                   slow (0.5 s sleep in the login user's ~/.bashrc) or busy
                   (CPU work there, like version-manager init hooks)
                   (default: fast)
  --systemd        hosts boot systemd and run etcd as kubespray installs it:
                   etcd.service (Type=notify, User=etcd, Restart=always,
                   /etc/etcd.env with kubespray's 5 s election timeout and
                   250 ms heartbeat), TLS on client and peer URLs, a login user
                   with sudo; the expert then uses systemctl, sudo and
                   etcdctl's TLS flags
  --link RATE      limit the operator-to-hosts link, e.g. 100mbit (default: none;
                   host-to-host traffic stays unshaped)
  --disk-dir DIR   hosts' disks on this machine's disk, in DIR/LAB (removed with
                   the lab), or "ram" for tmpfs. Default: RAM unless all hosts
                   together need more than a quarter of it (≈5 × the snapshot
                   per host), then /var/tmp/etcd-rescue-lab
  --relay, --no-relay  etcd-rescue relays the snapshot host to host, or copies
                   to every host directly (default: its own choice, see
                   recover --help); the expert always copies directly
  --json FILE      also write the results as JSON
  --markdown FILE  also write the results as Markdown (with --scale: the scaling
                   table, then each run's own)
  --keep-lab       leave the lab up afterwards (to look at it)
  --logs DIR       keep each etcd-rescue round's output and --report JSON in DIR
                   (rescue-ROUND.log and .json), to see where a round went
  -h, --help       this text`

/** One lab: how many hosts and how big a snapshot (bytes; undefined: --keys). */
export interface BenchCell {
  hosts: number
  sizeBytes?: number
}

export interface BenchArgs {
  help: boolean
  cells: BenchCell[]
  /** More than one cell: print and write the scaling table. */
  scale: boolean
  etcd: string
  keys: number
  rounds: number
  login?: Login
  link?: string
  /** undefined: chosen by size; null: RAM. */
  diskDir?: string | null
  json?: string
  markdown?: string
  keepLab: boolean
  /** --relay / --no-relay; default auto. */
  relay: boolean | 'auto'
  data: 'random' | 'kube'
  noCompress: boolean
  /** Hosts as kubespray makes them: systemd, etcd.service, TLS, sudo. */
  systemd: boolean
  logsDir?: string
}

export const SCALE_HOSTS = [3, 5, 7]
export const SCALE_SIZES = ['100MB', '1GB']

/** The command line, checked, as the runs to make. Nothing is started. */
export function parseBenchArgs(argv: string[]): BenchArgs {
  const { values } = parseFlags(argv, {
    hosts: { type: 'string' }, etcd: { type: 'string' }, keys: { type: 'string' }, rounds: { type: 'string' },
    json: { type: 'string' }, markdown: { type: 'string' }, size: { type: 'string' }, login: { type: 'string' }, link: { type: 'string' },
    scale: { type: 'boolean' }, 'disk-dir': { type: 'string' }, help: { type: 'boolean', short: 'h' }, 'keep-lab': { type: 'boolean' },
    relay: { type: 'boolean' }, 'no-relay': { type: 'boolean' }, data: { type: 'string' }, 'no-compress': { type: 'boolean' },
    systemd: { type: 'boolean' }, logs: { type: 'string' },
  }, 'bench.mjs')
  if (values.data !== undefined && values.data !== 'random' && values.data !== 'kube') throw new InputError(`--data is random or kube, not "${values.data}"`)
  if (values.data === 'kube' && values.keys !== undefined) throw new InputError('--data kube and --keys exclude each other', { hint: '--data kube fills the cluster up to --size (default 120 MiB)' })
  if (values.login !== undefined && !(LOGINS as readonly string[]).includes(values.login)) throw new InputError(`--login is fast, slow or busy, not "${values.login}"`)
  if (values.link !== undefined) parseRate(values.link)
  if (values.size !== undefined && values.keys !== undefined) throw new InputError('--size and --keys exclude each other', { hint: '--size fills the cluster with large values; --keys loads the lab\'s varied keys' })
  const list = (v: string | undefined) => v?.split(',').map((x) => x.trim())
  const hosts = (list(values.hosts) ?? (values.scale ? SCALE_HOSTS.map(String) : ['5'])).map((h) => intFlag('hosts', h, 1, 9)!)
  const sizes = list(values.size) ?? (values.scale && values.keys === undefined ? SCALE_SIZES : undefined)
  const bytes = sizes?.map(parseSize) ?? [undefined]
  const cells = bytes.flatMap((sizeBytes) => hosts.map((h) => ({ hosts: h, ...(sizeBytes !== undefined ? { sizeBytes } : {}) })))
  const diskDir = values['disk-dir']
  if (diskDir !== undefined && diskDir !== 'ram' && !diskDir.startsWith('/')) throw new InputError(`--disk-dir takes an absolute directory or "ram", not "${diskDir}"`)
  return {
    help: !!values.help,
    cells,
    scale: !!values.scale || cells.length > 1,
    etcd: values.etcd ?? '3.5.30',
    keys: intFlag('keys', values.keys, 1, 1_000_000) ?? 10_000,
    rounds: intFlag('rounds', values.rounds, 1, 20) ?? 3,
    login: values.login as Login | undefined,
    link: values.link,
    diskDir: diskDir === 'ram' ? null : diskDir,
    json: values.json,
    markdown: values.markdown,
    keepLab: !!values['keep-lab'],
    relay: relayFlag(values.relay, values['no-relay']),
    data: (values.data as 'random' | 'kube' | undefined) ?? 'random',
    noCompress: !!values['no-compress'],
    systemd: !!values.systemd,
    logsDir: values.logs,
  }
}

/** "100MB", "1GB", "1.5GiB", "512MiB" → bytes (MB and MiB alike are 2^20). */
export function parseSize(size: string): number {
  const m = /^(\d+(?:\.\d+)?)(MB|GB|MiB|GiB)$/i.exec(size)
  if (!m || Number(m[1]) <= 0) throw new InputError(`--size takes a size like 100MB or 1GB, not "${size}"`)
  return Math.round(Number(m[1]) * (/^g/i.test(m[2]) ? 2 ** 30 : 2 ** 20))
}

export async function main(argv: string[]): Promise<number> {
  try {
    const a = parseBenchArgs(argv)
    if (a.help) {
      process.stdout.write(`${BENCH_HELP}\n`)
      return ExitCode.OK
    }
    const log = (l: string) => process.stdout.write(`${l}\n`)
    const results: BenchResult[] = []
    for (const cell of a.cells) {
      if (a.scale) log(`\n== ${cell.hosts} hosts, ${cell.sizeBytes !== undefined ? `${(cell.sizeBytes / 2 ** 20).toFixed(0)} MiB` : a.data === 'kube' ? 'Kubernetes-like, 120 MiB' : `${a.keys} keys`} ==`)
      const r = await bench({
        hosts: cell.hosts, sizeBytes: cell.sizeBytes, keys: a.keys, etcd: a.etcd, login: a.login, link: a.link,
        rounds: a.rounds, diskDir: a.diskDir, keepLab: a.keepLab, relay: a.relay, data: a.data, noCompress: a.noCompress, systemd: a.systemd, logsDir: a.logsDir,
        ui: createUi({ tty: false, throttleMs: 60_000, out: { write: () => true } as never }),
        log,
      })
      results.push(r)
      log(`\n${benchMarkdown(r)}`)
      // Written after every run, so a matrix stopped half way keeps what it measured.
      if (a.json) writeFileSync(a.json, `${JSON.stringify(a.scale ? { runs: results } : r, null, 2)}\n`)
    }
    const md = a.scale ? `${scaleMarkdown(results)}\n${results.map(benchMarkdown).join('\n')}` : benchMarkdown(results[0])
    if (a.scale) log(`\n${scaleMarkdown(results)}`)
    if (a.markdown) writeFileSync(a.markdown, md)
    return ExitCode.OK
  } catch (err) {
    process.stderr.write(`error: ${formatError(err)}\n`)
    return (err as { exitCode?: number }).exitCode ?? ExitCode.FAILED
  }
}

// `bench`: recovery time of etcd-rescue against an expert by hand, side by side.
import { writeFileSync } from 'node:fs'
import { ExitCode, InputError, formatError } from '../errors.ts'
import { createUi } from '../task/ui.ts'
import { bench, benchMarkdown } from '../bench/bench.ts'
import { LOGINS, parseRate, type Login } from '../lab/shape.ts'
import { intFlag, parseFlags } from './args.ts'
import { relayFlag } from './recover.ts'

export const BENCH_HELP = `Usage: npx zx scripts/bench.mjs [options]

Measures recovery time on a lab (needs root): the same snapshot and the same
disaster, recovered alternately by an expert's by-hand OpenSSH procedure (every
step parallel, multiplexed connections, health polled every 0.5 s) and by
etcd-rescue (which also copies with verification and proves the result).
Prints every round, the medians and the ratio etcd-rescue / manual.

Options:
  --hosts N        lab hosts (default: 5)
  --etcd VERSION   3.4.23, 3.5.16 or 3.5.30 (default: 3.5.30)
  --keys N         keys loaded before the snapshot (default: 10000, ≈120 MiB)
  --size SIZE      snapshot size instead of --keys, e.g. 100MB or 1GB
  --rounds N       rounds per method (default: 3)
  --login KIND     hosts' login shell cost for every remote command: fast,
                   slow (0.5 s sleep in root's ~/.bashrc) or busy (CPU work
                   there, like version-manager init hooks) (default: fast)
  --link RATE      limit the operator-to-hosts link, e.g. 100mbit (default: none;
                   host-to-host traffic stays unshaped)
  --relay, --no-relay  etcd-rescue relays the snapshot host to host, or copies
                   to every host directly (default: its own choice, see
                   recover --help); the expert always copies directly
  --json FILE      also write the results as JSON
  --markdown FILE  also write the results as a Markdown table
  -h, --help       this text`

export async function main(argv: string[]): Promise<number> {
  try {
    const { values } = parseFlags(argv, {
      hosts: { type: 'string' }, etcd: { type: 'string' }, keys: { type: 'string' }, rounds: { type: 'string' },
      json: { type: 'string' }, markdown: { type: 'string' }, size: { type: 'string' }, login: { type: 'string' }, link: { type: 'string' }, relay: { type: 'boolean' }, 'no-relay': { type: 'boolean' }, help: { type: 'boolean', short: 'h' }, 'keep-lab': { type: 'boolean' },
    }, 'bench.mjs')
    if (values.help) {
      process.stdout.write(`${BENCH_HELP}\n`)
      return ExitCode.OK
    }
    if (values.login !== undefined && !(LOGINS as readonly string[]).includes(values.login)) throw new InputError(`--login is fast, slow or busy, not "${values.login}"`)
    if (values.link !== undefined) parseRate(values.link)
    const r = await bench({
      hosts: intFlag('hosts', values.hosts, 1, 9) ?? 5,
      etcd: values.etcd ?? '3.5.30',
      keys: values.size !== undefined ? keysForSize(values.size) : intFlag('keys', values.keys, 1, 1_000_000) ?? 10_000,
      login: values.login as Login | undefined,
      link: values.link,
      relay: relayFlag(values.relay, values['no-relay']),
      rounds: intFlag('rounds', values.rounds, 1, 20) ?? 3,
      keepLab: values['keep-lab'],
      ui: createUi({ tty: false, throttleMs: 60_000, out: { write: () => true } as never }),
      log: (l) => process.stdout.write(`${l}\n`),
    })
    process.stdout.write(`\n${r.hosts} members, etcd ${r.etcdVersion}, snapshot ${(r.snapshotBytes / 2 ** 20).toFixed(0)} MiB\n`)
    process.stdout.write(`  manual (OpenSSH, by hand)  median ${r.manualMedian.toFixed(2)} s\n`)
    process.stdout.write(`  etcd-rescue                median ${r.rescueMedian.toFixed(2)} s\n`)
    process.stdout.write(`  ratio etcd-rescue/manual   ${r.ratio.toFixed(2)}\n\n${benchMarkdown(r)}`)
    if (values.json) writeFileSync(values.json, `${JSON.stringify(r, null, 2)}\n`)
    if (values.markdown) writeFileSync(values.markdown, benchMarkdown(r))
    return ExitCode.OK
  } catch (err) {
    process.stderr.write(`error: ${formatError(err)}\n`)
    return (err as { exitCode?: number }).exitCode ?? ExitCode.FAILED
  }
}

/** The lab's load writes about 12.6 KB per key on average (10000 keys ≈ 120 MiB). */
export function keysForSize(size: string): number {
  const m = /^(\d+(?:\.\d+)?)(MB|GB|MiB|GiB)$/i.exec(size)
  if (!m) throw new InputError(`--size takes a size like 100MB or 1GB, not "${size}"`)
  const bytes = Number(m[1]) * (/^g/i.test(m[2]) ? 2 ** 30 : 2 ** 20)
  return Math.max(1, Math.round(bytes / 12_600))
}

// `bench`: recovery time of etcd-rescue against an expert by hand, side by side.
import { writeFileSync } from 'node:fs'
import { ExitCode, formatError } from '../errors.ts'
import { createUi } from '../run/ui.ts'
import { bench } from '../bench/bench.ts'
import { intFlag, parseFlags } from './args.ts'

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
  --rounds N       rounds per method (default: 3)
  --json FILE      also write the results as JSON
  -h, --help       this text`

export async function main(argv: string[]): Promise<number> {
  try {
    const { values } = parseFlags(argv, {
      hosts: { type: 'string' }, etcd: { type: 'string' }, keys: { type: 'string' }, rounds: { type: 'string' },
      json: { type: 'string' }, help: { type: 'boolean', short: 'h' }, 'keep-lab': { type: 'boolean' },
    }, 'bench.mjs')
    if (values.help) {
      process.stdout.write(`${BENCH_HELP}\n`)
      return ExitCode.OK
    }
    const r = await bench({
      hosts: intFlag('hosts', values.hosts, 1, 9) ?? 5,
      etcd: values.etcd ?? '3.5.30',
      keys: intFlag('keys', values.keys, 1, 1_000_000) ?? 10_000,
      rounds: intFlag('rounds', values.rounds, 1, 20) ?? 3,
      keepLab: values['keep-lab'],
      ui: createUi({ tty: false, throttleMs: 60_000, out: { write: () => true } as never }),
      log: (l) => process.stdout.write(`${l}\n`),
    })
    process.stdout.write(`\n${r.hosts} members, etcd ${r.etcdVersion}, snapshot ${(r.snapshotBytes / 2 ** 20).toFixed(0)} MiB\n`)
    process.stdout.write(`  manual (OpenSSH, by hand)  median ${r.manualMedian.toFixed(2)} s\n`)
    process.stdout.write(`  etcd-rescue                median ${r.rescueMedian.toFixed(2)} s\n`)
    process.stdout.write(`  ratio etcd-rescue/manual   ${r.ratio.toFixed(2)}\n`)
    if (values.json) writeFileSync(values.json, `${JSON.stringify(r, null, 2)}\n`)
    return ExitCode.OK
  } catch (err) {
    process.stderr.write(`error: ${formatError(err)}\n`)
    return (err as { exitCode?: number }).exitCode ?? ExitCode.FAILED
  }
}

// `backup`: one verified snapshot of a live cluster, brought here.
import { ExitCode, InputError, formatError } from '../errors.ts'
import { loadInventory, membersOf } from '../inventory/members.ts'
import { createUi } from '../task/ui.ts'
import { backup } from '../backup/backup.ts'
import { formatBytes } from '../task/format.ts'
import { durationFlag, intFlag, parseFlags } from './args.ts'
import { CONNECTION_FLAGS, CONNECTION_HELP, connectionSetup } from './ansible-flags.ts'
import { askBecomePassword } from './password.ts'

export const BACKUP_HELP = `Usage: npx zx scripts/backup.mjs -i INVENTORY --out DIR [options]

Takes a snapshot of a live etcd cluster: picks a healthy member (a follower when
there is one), runs \`etcdctl snapshot save\` on it over SSH, streams the file
here, checks its SHA-256 integrity trailer, and names it
DIR/<cluster>-<UTC time>-rev<revision>.db. It restores with recover.mjs, or
with plain \`etcdutl snapshot restore\` /
\`ETCDCTL_API=3 etcdctl snapshot restore\`.

Reaching the hosts (as for recover.mjs):
${CONNECTION_HELP}

Options:
  -o, --out DIR      where backups go (created if missing)
  --group NAME       inventory group of the members (default: etcd)
  --keep N           then delete all but the newest N backups of this cluster
                     that this tool made in DIR (other files are never touched)
  --name NAME        cluster name in the file name (default: the cluster ID
                     in hex)
  --known-hosts FILE, --connect-timeout SECONDS   as for recover.mjs
  -K, --ask-become-pass                           as for recover.mjs
  --plain            plain log lines instead of the live task list
  -h, --help         this text

Exit codes: 0 saved and verified; 1 failed; 2 bad input; 3 no healthy member.`

export async function main(argv: string[]): Promise<number> {
  try {
    const { values } = parseFlags(argv, {
      ...CONNECTION_FLAGS,
      out: { type: 'string', short: 'o' },
      group: { type: 'string' },
      keep: { type: 'string' },
      name: { type: 'string' },
      'known-hosts': { type: 'string' },
      'ask-become-pass': { type: 'boolean', short: 'K' },
      'connect-timeout': { type: 'string' },
      plain: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    }, 'backup.mjs')
    if (values.help) {
      process.stdout.write(`${BACKUP_HELP}\n`)
      return ExitCode.OK
    }
    if (!values.out) throw new InputError('--out is required (the directory backups go to)')
    const setup = connectionSetup(values)
    const set = membersOf(loadInventory(setup.inventory), values.group ?? 'etcd', setup.members)
    const ui = createUi({ tty: values.plain ? false : undefined })
    set.warnings.forEach((w) => ui.warn(w))
    const r = await backup({
      members: set.members,
      outDir: values.out,
      keep: intFlag('keep', values.keep, 1, 100_000),
      clusterName: values.name,
      knownHosts: values['known-hosts'],
      connectTimeoutMs: durationFlag('connect-timeout', values['connect-timeout']),
      becomePassword: values['ask-become-pass'] ? await askBecomePassword() : undefined,
      ui,
    })
    process.stdout.write(`\nsaved ${r.file}\n  ${formatBytes(r.snapshot.size)}, revision ${r.revision}, from ${r.member}, sha256 ${r.snapshot.sha256}, in ${r.seconds.toFixed(1)} s\n`)
    for (const f of r.removed) process.stdout.write(`  removed old backup ${f}\n`)
    return ExitCode.OK
  } catch (err) {
    process.stderr.write(`error: ${formatError(err)}\n`)
    return (err as { exitCode?: number }).exitCode ?? ExitCode.FAILED
  }
}

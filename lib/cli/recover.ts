// `recover`: argument handling, confirmation, rendering and exit code around
// lib/recover/recover.ts. Kept thin so drills run the very same recovery.
import { createInterface } from 'node:readline/promises'
import { ExitCode, InputError, formatError } from '../errors.ts'
import { createUi } from '../task/ui.ts'
import { recover } from '../recover/recover.ts'
import { interruptOnSigint } from '../task/interrupt.ts'
import { TOKEN_RE } from '../plan/grammar.ts'
import { durationFlag, intFlag, parseFlags } from './args.ts'
import { CONNECTION_FLAGS, CONNECTION_HELP, connectionSetup } from './ansible-flags.ts'
import { askBecomePassword } from './password.ts'
import { planText, recapTable, reportJson, summaryLine, survivorsText, writeReport } from './render.ts'

export const RECOVER_HELP = `Usage: npx zx scripts/recover.mjs -i INVENTORY --snapshot FILE [options]
       npx zx scripts/recover.mjs -i INVENTORY --from-survivors [options]

Restores a whole etcd cluster from one snapshot, over SSH, the way etcd's
disaster-recovery guide says: every member from the same file, each with its
own --name and peer URL, one --initial-cluster and one fresh token for all.

What it does, in order (no member is changed before step 4):
  1. checks the snapshot here: SHA-256 trailer, bbolt header
  2. connects to every member (host keys checked against known_hosts) and
     probes it read-only: etcd version (the same everywhere), tools, free
     space, data dir; any problem on any host stops the run (exit 3).
     It also reads what each member's data dir holds (revision, raft index,
     cluster ID: a running member by endpoint status against it alone, a
     stopped one offline from its member/snap/db in place, a few pages read,
     nothing written). If a member holds a revision newer than the
     snapshot's, restoring would roll those writes back: refused (exit 3)
     unless --accept-data-loss
  3. copies the snapshot to every host at once (alongside step 2, removed
     again if step 2 refuses), verified there (see --no-compress), and
     restores each member into a work dir beside its data dir as soon as its
     copy is in
  4. once every member holds its restored data: stops each member's etcd
     (only that member's: matched by data dir/ports), moves the old data dir
     aside as DATA_DIR.etcd-rescue-old-<UTC time> (never deleted) and the
     restored one in
  5. once every old member is stopped: starts etcd, waits for a healthy
     quorum, then verifies: predicted cluster and member IDs on every
     member, one leader, equal hashkv, revision ≥ the snapshot's, full
     member list, no alarms

Members run by systemd (etcd_service: systemd): preflight reads the unit as
systemd has it loaded, and refuses (exit 3) a unit that would start another
member than the inventory's (name, data dir, peer URL), one changed on disk
and not reloaded (NeedDaemonReload), masked, or with missing files. From its
stop to its start the unit is held: a runtime drop-in (/run/systemd/system/
UNIT.d/zz-etcd-rescue-hold.conf, loaded beside the restore with one
daemon-reload) makes every start fail while /run/etcd-rescue/UNIT.hold exists.
Right after that reload the unit is read again; if it changed since preflight
that member's restore fails and no member is stopped. A run interrupted
between stop and start leaves the hold: run again, or remove the hold file.

Inputs:
  -s, --snapshot FILE    the file written by \`etcdctl snapshot save\`
  --from-survivors       instead of --snapshot: recover from the member holding
                         the freshest data (highest revision, then raft index,
                         a running member over a stopped one). Its snapshot
                         (\`snapshot save\` against it alone, or a checked copy of
                         a stopped member's member/snap/db) is kept as a backup
                         file in --backup-dir, then every member is restored
                         from it. Refused (exit 3) when no member holds data,
                         one cannot be read, or they belong to different
                         clusters
  --backup-dir DIR       where --from-survivors keeps that snapshot (default: .)
  --group NAME           inventory group of the members (default: etcd)

Reaching the hosts (as ansible-playbook and ssh do; see README "Connecting"):
${CONNECTION_HELP}

Options:
  --accept-data-loss     restore the snapshot even though a member holds newer
                         revisions; they are lost, and the plan, the report and
                         the summary say how many and where
  -C, --check            print what every member holds against the snapshot and
                         the plan (per host the exact commands, paths, the
                         --initial-cluster string, predicted member and cluster
                         IDs) after all checks, and change nothing
  -y, --yes              do not ask for confirmation. Without it a terminal is
                         needed to confirm; with no terminal the run is refused
  -f, --forks N          hosts worked on at once (default: ansible.cfg forks,
                         else all members)
  --token T              the --initial-cluster-token for all members (default:
                         a fresh one, or the one an interrupted run left)
  --bump-revision N      raise the revision by N and mark old revisions
                         compacted (for Kubernetes, e.g. 1000000000; etcd >=
                         3.4.27/3.5.10): watchers that saw newer revisions
                         must relist. The plan
                         recommends it when the inventory has kubespray's groups
  --skip-hash-check      accept a snapshot without its integrity trailer
                         (a raw copy of member/snap/db)
  --timeout SECONDS      wait this long for a healthy quorum (default: 120)
  --step-timeout SECONDS how long a stop, set-aside or start may take on one
                         host before it is given up there (its processes ended)
                         and the run fails, naming host and step; the restore
                         gets this plus 1 s per 5 MB of snapshot (default: 120).
                         A hung disk or a wedged systemd then ends the run
                         instead of holding it
  --connect-timeout SECONDS  SSH handshake timeout per host (default:
                         ansible_timeout, else ansible.cfg timeout, else the ssh
                         config's ConnectTimeout, else 10)
  --wait-lock SECONDS    when another etcd-rescue run holds a member (a second
                         operator, or a run whose laptop dropped), wait this
                         long for it (default: 0, refuse at once with exit 3
                         naming the holder's host, PID, start time and command)
  -K, --ask-become-pass  ask once for the sudo password of hosts with
                         ansible_become (no echo; without a terminal, the first
                         line of stdin), used for every host, never printed.
                         Without it sudo runs with -n: one that wants a
                         password fails preflight (exit 3)
  --retries N            copy attempts after a failed one, per host, after 1 s,
                         2 s, 4 s…, over a new connection if the old one died
                         (default: 2). Nothing is stopped before every copy is
                         in place: a host that stays unreachable ends the run
                         with every member as it was
  --relay                send the snapshot over this machine's link once, to the
                         first member, which passes it on to the others over the
                         hosts' own network (what pays when you recover over a
                         VPN or a slow office link). Each host still checks the
                         SHA-256 before the file gets its name. The hop is the
                         first member's own \`ssh\` client to each other member,
                         port 22 as here: it logs in with your key through an
                         agent forwarded from this run that holds only that key,
                         signs one login per member and only during the copy (no
                         key is put on any host); the member's host key must be
                         the one verified from here (a temporary known_hosts on
                         the first member, StrictHostKeyChecking=yes). A member
                         the hop cannot serve (no ssh client, unreachable from
                         the first member, host key or login refused, sudo
                         asking a password with -K, no key file to lend) gets a
                         direct copy, and the output says why. The leg from
                         here to the first member is zstd-compressed when both
                         ends have zstd (whatever the sample says)
  --no-relay             copy from here to every member directly
                         Default (neither): every copy starts at once, and what
                         they move together is taken over 0.75 s once the first
                         member got 4 MiB; slower than 25 MB/s in all (about
                         200 Mbit/s, slower than any network between servers):
                         all but the first are stopped and relayed from it;
                         faster, or already done: they go on
  --no-compress          never zstd-compress a copy (nor --relay's first leg).
                         By default a copy is sent zstd-compressed (one core
                         here, level 1) when a sample of the snapshot shrinks
                         1.3x or more (the bench's Kubernetes-like data: 2.8x;
                         random values: not at all) and this machine and every
                         member of the batch have zstd and a session that takes
                         files (one read feeds them all: one without makes the
                         batch plain). This machine hashes (SHA-256) exactly
                         the bytes it compresses and lets zstd's frame end only
                         if they are the checked snapshot; the member checks the
                         frame's checksum and the size. A plain copy is hashed
                         on the member. A retry goes compressed as the first
                         copy did, its last attempt plain; a host-to-host hop
                         goes plain
  --known-hosts FILE     known_hosts for hosts whose inventory and ssh config
                         name none (default: ~/.ssh/known_hosts)
  --report FILE.json     write the plan, every phase's timing and outcome per
                         host (a copy's also how it went and the bytes sent),
                         and the verification results as JSON
  --plain                plain log lines instead of the live task list (the
                         default when stdout is not a terminal or CI is set)
  -v, --verbose          show every remote command and its output
  -h, --help             this text

Exit codes:
  0  recovered and verified (with --check: every check passed)
  1  failed after changes began: the output says what was changed on which host;
     fix the cause and run the same command again, it continues safely
  2  bad input (flags, inventory, snapshot) or not confirmed: nothing changed
  3  a preflight check failed on at least one host, another run holds a
     member's lock, a member holds data newer than the snapshot (see
     --accept-data-loss, --from-survivors), or --from-survivors cannot choose
     a member: nothing changed
  4  the cluster is up but verification found a problem (a member that did not
     come up is named, with the end of its log)
  130  interrupted (Ctrl-C): no new step was started, running ones finished;
     the output says where each member stands. Run the same command again.
     A second Ctrl-C exits at once.

Interrupted runs: run the same command again. The snapshot already on a host
is reused, old data is set aside only once, members already restored with the
same snapshot keep their data, and the token is picked up from the hosts.`

/** --relay / --no-relay / neither (auto). */
export function relayFlag(relay?: boolean, noRelay?: boolean): boolean | 'auto' {
  if (relay && noRelay) throw new InputError('--relay and --no-relay exclude each other')
  return relay ? true : noRelay ? false : 'auto'
}

export async function main(argv: string[]): Promise<number> {
  let report: string | undefined
  try {
    const { values } = parseFlags(argv, {
      ...CONNECTION_FLAGS,
      snapshot: { type: 'string', short: 's' },
      'from-survivors': { type: 'boolean' },
      'backup-dir': { type: 'string' },
      'accept-data-loss': { type: 'boolean' },
      group: { type: 'string' },
      check: { type: 'boolean', short: 'C' },
      yes: { type: 'boolean', short: 'y' },
      forks: { type: 'string', short: 'f' },
      token: { type: 'string' },
      'bump-revision': { type: 'string' },
      'skip-hash-check': { type: 'boolean' },
      timeout: { type: 'string' },
      'step-timeout': { type: 'string' },
      'connect-timeout': { type: 'string' },
      'wait-lock': { type: 'string' },
      retries: { type: 'string' },
      relay: { type: 'boolean' },
      'no-relay': { type: 'boolean' },
      'no-compress': { type: 'boolean' },
      'known-hosts': { type: 'string' },
      'ask-become-pass': { type: 'boolean', short: 'K' },
      report: { type: 'string' },
      plain: { type: 'boolean' },
      verbose: { type: 'boolean', short: 'v' },
      help: { type: 'boolean', short: 'h' },
    }, 'recover.mjs')
    if (values.help) {
      process.stdout.write(`${RECOVER_HELP}\n`)
      return ExitCode.OK
    }
    const setup = connectionSetup(values)
    if (!values.snapshot && !values['from-survivors']) throw new InputError('--snapshot or --from-survivors is required', { hint: 'the file written by `etcdctl snapshot save`, or recover from the freshest member (see --help)' })
    if (values.snapshot && values['from-survivors']) throw new InputError('--snapshot and --from-survivors exclude each other', { hint: '--from-survivors takes its snapshot from the freshest member' })
    if (values.token !== undefined && !TOKEN_RE.test(values.token)) {
      throw new InputError(`--token must start with a letter or digit and hold only letters, digits, '.', '_' and '-', at most 128 (got "${values.token}")`)
    }
    report = values.report
    const interactive = Boolean(process.stdin.isTTY)
    if (!values.check && !values.yes && !interactive) {
      throw new InputError('refusing to recover without confirmation: no terminal to ask on', { hint: 'Pass --yes to confirm on the command line (or --check to only see the plan).' })
    }
    const ui = createUi({ tty: values.plain ? false : undefined })
    const interrupt = interruptOnSigint(() => ui.warn('Ctrl-C: no new step will start; waiting for the running ones to finish (Ctrl-C again to exit at once)'))
    const result = await recover({
      signal: interrupt.signal,
      retries: intFlag('retries', values.retries, 0, 10),
      relay: relayFlag(values.relay, values['no-relay']),
      compress: values['no-compress'] ? false : undefined,
      inventory: setup.inventory,
      memberContext: setup.members,
      snapshot: values.snapshot,
      fromSurvivors: values['from-survivors'],
      backupDir: values['backup-dir'],
      acceptDataLoss: values['accept-data-loss'],
      group: values.group,
      check: values.check,
      forks: intFlag('forks', values.forks, 1, 1000) ?? setup.ansible.forks?.value,
      token: values.token,
      bumpRevision: intFlag('bump-revision', values['bump-revision'], 1, Number.MAX_SAFE_INTEGER),
      skipHashCheck: values['skip-hash-check'],
      timeoutMs: durationFlag('timeout', values.timeout),
      stepTimeoutMs: durationFlag('step-timeout', values['step-timeout']),
      connectTimeoutMs: durationFlag('connect-timeout', values['connect-timeout']),
      waitLockSeconds: intFlag('wait-lock', values['wait-lock'], 0, 86_400),
      becomePassword: values['ask-become-pass'] ? await askBecomePassword() : undefined,
      knownHosts: values['known-hosts'],
      verbose: values.verbose,
      ui,
      confirm: values.yes ? undefined : async (plan) => {
        process.stdout.write(`\nAbout to stop etcd on ${plan.members.length} members (${plan.members.map((m) => m.name).join(', ')}), set their data aside and restore ${plan.snapshot.path}.\n`)
        if (values['accept-data-loss']) process.stdout.write('--accept-data-loss: revisions that members hold past the snapshot (listed above) will be lost.\n')
        const rl = createInterface({ input: process.stdin, output: process.stdout })
        // Ctrl-C at the prompt arrives as a key, not a signal: it means no.
        const cancelled = new Promise<string>((resolve) => rl.once('SIGINT', () => resolve('')))
        const answer = await Promise.race([rl.question('Type "yes" to go on: '), cancelled])
        rl.close()
        return answer.trim() === 'yes'
      },
    }).finally(interrupt.release)
    const survivors = survivorsText(result)
    if (survivors && values.check) process.stdout.write(`\n${survivors}\n`)
    if (result.plan && values.check) process.stdout.write(`\n${planText(result.plan)}\n`)
    if (result.journal.records.length) process.stdout.write(`\n${recapTable(result)}\n`)
    if (result.checks.length) process.stdout.write(`\nVerification:\n${result.checks.map((c) => `  ${c.ok ? '✔' : '✖'} ${c.name}: ${c.detail}`).join('\n')}\n`)
    if (values.verbose && Object.keys(result.remoteCommands).length) {
      process.stdout.write(`\nRemote commands started (each a login shell on its host): ${Object.entries(result.remoteCommands).map(([h, n]) => `${h} ${n}`).join(', ')}; round trips (commands and steps on the host's session): ${Object.entries(result.roundTrips).map(([h, n]) => `${h} ${n}`).join(', ')}; peak memory ${(result.peakRssBytes / 2 ** 20).toFixed(0)} MiB\n`)
    }
    const line = summaryLine(result)
    ;(result.exitCode === 0 ? process.stdout : process.stderr).write(`\n${result.exitCode === 0 ? '' : `${result.result}: `}${line}\n`)
    if (report) {
      writeReport(report, reportJson(result, { inventory: setup.inventory }))
      process.stdout.write(`report: ${report}\n`)
    }
    return result.exitCode
  } catch (err) {
    process.stderr.write(`error: ${formatError(err)}\n`)
    return (err as { exitCode?: number }).exitCode ?? ExitCode.FAILED
  }
}

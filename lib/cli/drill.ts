// `drill`: rehearse the whole disaster and recovery, report it three ways
// (screen summary, JSON + HTML report, one history line per drill).
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { ExitCode, InputError, formatError } from '../errors.ts'
import { createUi } from '../task/ui.ts'
import { drill } from '../drill/drill.ts'
import { SCENARIOS, type Scenario } from '../drill/disaster.ts'
import { drillHtml, parseHistory } from '../drill/html.ts'
import { timeStamp } from '../plan/recovery.ts'
import { durationFlag, intFlag, parseFlags } from './args.ts'
import { CONNECTION_FLAGS, connectionSetup } from './ansible-flags.ts'
import { askBecomePassword } from './password.ts'

export const DRILL_HELP = `Usage: npx zx scripts/drill.mjs [options]     (or: npm run drill -- [options])

Rehearses a whole etcd disaster and recovery, end to end, and measures it.
With no options: brings up a lab of 3 real hosts on this machine (network,
PID and mount namespaces, real sshd; needs root), starts a cluster, writes a
known data set, takes a backup, destroys the cluster, recovers it with the same
code as recover.mjs, checks every key byte for byte on every member, reports,
and tears the lab down.

Options:
  --scenario S        total-loss (default): every member killed, data wrecked
                      quorum-loss: a majority lost; survivors keep running and
                        must be stopped and restored too
                      quorum-loss-after-writes: writes after the backup, then
                        a majority lost; one member survives holding them.
                        Recovered twice: from the backup with
                        --accept-data-loss (those writes are lost, and
                        counted), then with --from-survivors (nothing lost).
                        Reports the recovery point beside the recovery time
                      corrupt-member: one member's data wrecked
                      corrupt-snapshot: recovery must refuse a damaged snapshot
                        (exit 2) before touching anything
                      unreachable-host: one host does not answer; recovery must
                        stop before any change (exit 3)
  --hosts N           lab hosts, 1 to 9 (default: 3)
  --etcd VERSION      3.4.23 (default), 3.5.16 or 3.5.30
  --init systemd      a lab of kubespray-style hosts (systemd as PID 1,
                      etcd.service, login as a sudo user; see lab.mjs --help);
                      default tini
  --tls               with --init systemd: TLS everywhere, kubespray's
                      certificates
  --keys N            keys in the data set (default: 3000, sizes 16 B to
                      512 KiB)
  --bump-revision N   recover with --bump-revision N --mark-compacted, as a
                      Kubernetes cluster should be (etcd >= 3.4.27 / 3.5.10)
  --keep-lab          leave the lab up afterwards (take it down with
                      npx zx scripts/lab.mjs down --name NAME)
  --lab-name NAME     name of the lab (default: a fresh drillXXX)
  -i, --inventory PATH  drill on a staging cluster instead: refused unless every
                      member has etcd_drill_allowed: true, and --yes is given.
                      With it, -e, -u, --private-key and -F work as for
                      recover.mjs (a lab needs none of them)
  --group NAME        inventory group (default: etcd)
  --yes               confirm a drill on --inventory (it destroys the cluster)
  --report FILE.json  report path (default: reports/drill-<UTC time>.json); an
                      HTML timeline is written next to it, and a line appended
                      to drill-history.jsonl in the same directory (the HTML
                      charts that history: recovery time and data lost)
  --known-hosts FILE, --connect-timeout SECONDS   as for recover.mjs
  -K, --ask-become-pass                           as for recover.mjs
  --plain             plain log lines instead of the live task list
  -h, --help          this text

Exit codes: 0 the drill went as expected (recovered and every key verified, or
refused as the scenario expects); 1 it did not; 2 bad input.`

export async function main(argv: string[]): Promise<number> {
  try {
    const { values } = parseFlags(argv, {
      scenario: { type: 'string' },
      hosts: { type: 'string' },
      etcd: { type: 'string' },
      init: { type: 'string' },
      tls: { type: 'boolean' },
      keys: { type: 'string' },
      'bump-revision': { type: 'string' },
      'keep-lab': { type: 'boolean' },
      'lab-name': { type: 'string' },
      ...CONNECTION_FLAGS,
      group: { type: 'string' },
      yes: { type: 'boolean', short: 'y' },
      report: { type: 'string' },
      'known-hosts': { type: 'string' },
      'ask-become-pass': { type: 'boolean', short: 'K' },
      'connect-timeout': { type: 'string' },
      plain: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    }, 'drill.mjs')
    if (values.help) {
      process.stdout.write(`${DRILL_HELP}\n`)
      return ExitCode.OK
    }
    const scenario = (values.scenario ?? 'total-loss') as Scenario
    if (!SCENARIOS.includes(scenario)) throw new InputError(`unknown --scenario "${values.scenario}"; one of ${SCENARIOS.join(', ')}`)
    if (values.inventory && (values.hosts || values.etcd || values['keep-lab'] || values['lab-name'] || values.init || values.tls)) {
      throw new InputError('--hosts, --etcd, --init, --tls, --keep-lab and --lab-name are for the lab; they do not go with --inventory')
    }
    const connected = ['extra-vars', 'user', 'private-key', 'ssh-config'] as const
    if (!values.inventory && connected.some((f) => values[f] !== undefined)) {
      throw new InputError('-e, -u, --private-key and -F go with --inventory; a lab drill reaches its own hosts')
    }
    // Only an explicit -i: with none, the drill runs on a lab, whatever ansible.cfg names.
    const setup = values.inventory ? connectionSetup(values) : undefined
    const reportFile = resolve(values.report ?? join('reports', `drill-${timeStamp()}.json`))
    if (!reportFile.endsWith('.json')) throw new InputError('--report must name a .json file (the HTML goes next to it)')
    mkdirSync(dirname(reportFile), { recursive: true })
    const ui = createUi({ tty: values.plain ? false : undefined })
    const report = await drill({
      scenario,
      hosts: intFlag('hosts', values.hosts, 1, 9),
      etcd: values.etcd,
      init: values.init as 'tini' | 'systemd' | undefined,
      tls: values.tls,
      keys: intFlag('keys', values.keys, 1, 1_000_000),
      bumpRevision: intFlag('bump-revision', values['bump-revision'], 1, Number.MAX_SAFE_INTEGER),
      keepLab: values['keep-lab'],
      labName: values['lab-name'],
      inventory: setup?.inventory,
      memberContext: setup?.members,
      group: values.group,
      yes: values.yes,
      knownHosts: values['known-hosts'],
      connectTimeoutMs: durationFlag('connect-timeout', values['connect-timeout']),
      becomePassword: values['ask-become-pass'] ? await askBecomePassword() : undefined,
      backupDir: join(dirname(reportFile), 'backups'),
      ui,
    })
    writeFileSync(reportFile, `${JSON.stringify(report, null, 2)}\n`)
    const html = reportFile.replace(/\.json$/, '.html')
    const historyFile = join(dirname(reportFile), 'drill-history.jsonl')
    appendFileSync(historyFile, `${JSON.stringify({
      at: report.startedAt, scenario: report.scenario, target: report.target, etcdVersion: report.etcdVersion,
      keys: report.keysWritten, keysChecked: report.keysChecked, result: report.result, rtoSeconds: report.rtoSeconds,
      recoveryPoint: report.recoveryPoint, ways: report.ways, snapshotBytes: report.snapshot?.size, report: reportFile,
    })}\n`)
    writeFileSync(html, drillHtml(report, existsSync(historyFile) ? parseHistory(readFileSync(historyFile, 'utf8')) : []))
    const ok = report.result === 'verified'
    const out = ok ? process.stdout : process.stderr
    out.write(`\nDrill ${report.scenario}: ${ok ? 'VERIFIED' : 'FAILED'}\n`)
    out.write(`  expected  ${report.expected}\n  actual    ${report.actual}\n`)
    if (report.rtoSeconds !== undefined) out.write(`  RTO       ${report.rtoSeconds.toFixed(1)} s from disaster to a verified cluster\n`)
    if (report.recoveryPoint) out.write(`  RPO       ${report.recoveryPoint.keysLost} keys, ${report.recoveryPoint.revisionsLost} revisions lost\n`)
    for (const w of report.ways ?? []) out.write(`  ${w.way.padEnd(26)} ${w.rtoSeconds.toFixed(1)} s, ${w.keysLost} keys and ${w.revisionsLost} revisions lost${w.chosen ? ` (from ${w.chosen})` : ''}\n`)
    out.write(`  keys      ${report.keysChecked} of ${report.keysWritten} verified on every member\n`)
    if (report.snapshot) out.write(`  snapshot  ${(report.snapshot.size / 2 ** 20).toFixed(1)} MiB at revision ${report.snapshot.revision}\n`)
    if (report.error && !ok) out.write(`\n${report.error}\n`)
    out.write(`  report    ${reportFile}\n            ${html}\n`)
    return ok ? ExitCode.OK : ExitCode.FAILED
  } catch (err) {
    process.stderr.write(`error: ${formatError(err)}\n`)
    return (err as { exitCode?: number }).exitCode ?? ExitCode.FAILED
  }
}

// recover, backup and drill on kubespray-style members: systemd 252 as each
// host's PID 1, etcd.service as user etcd reading /etc/etcd.env, TLS with
// client-certificate auth everywhere, login as a sudo user, and an inventory
// with no etcd variable at all (lab up --init systemd --tls). Two labs: etcd
// 3.5.30 with passwordless sudo and Restart=on-failure, and etcd 3.4.23 with a
// sudo that asks for a password (-K) and Restart=always.
import { describe, expect, it, vi } from 'vitest'
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { clusterLoad, type Lab } from '../../lib/lab/index.ts'
import { loadInventory, membersOf } from '../../lib/inventory/members.ts'
import { directGateway } from '../../lib/etcd/gateway.ts'
import { recover } from '../../lib/recover/recover.ts'
import { backup } from '../../lib/backup/backup.ts'
import { drill } from '../../lib/drill/drill.ts'
import { sha256Hex } from '../../lib/lab/load.ts'
import { sh } from '../../lib/shell/sh.ts'
import { binShIsBash, captureUi, onHost, useLab } from '../support/lab.ts'
import { hookedUi, onHostNow } from '../support/faults.ts'
import { runRecover } from '../support/cli.ts'
import { SshHost } from '../../lib/ssh/connection.ts'
import { StepSession } from '../../lib/ssh/session.ts'
import { Journal, type PhaseRecord } from '../../lib/task/journal.ts'

const PREFIX = '/etcd-rescue/load/'
const DATA = '/var/lib/etcd'

const passwordOf = (lab: Lab) => (lab.state.systemd?.sudo === 'password' ? readFileSync(lab.paths.becomePassword, 'utf8').trim() : undefined)

/** A member's gateway from this machine, over TLS with the lab's own copy of that host's admin certificate. */
function tlsGateway(lab: Lab, i: number) {
  const h = lab.state.hosts[i - 1]
  const pki = lab.paths.pki
  return directGateway(`https://${h.address}:2379`, { ca: join(pki, 'ca.pem'), cert: join(pki, `admin-${h.name}.pem`), key: join(pki, `admin-${h.name}-key.pem`) })
}

/** Every key of the load, read from each member alone over TLS, equal to what was written. */
async function expectAllKeys(lab: Lab, manifest: Record<string, string>) {
  for (const h of lab.state.hosts) {
    const kvs = await tlsGateway(lab, h.index).rangePrefix(PREFIX, { serializable: true })
    const got = Object.fromEntries(kvs.map((kv) => [kv.key.toString(), sha256Hex(kv.value)]))
    expect(Object.keys(got).length, `${h.name} key count`).toBe(Object.keys(manifest).length)
    expect(got, `${h.name} values`).toEqual(manifest)
  }
}

/** The state each host is in, to show a refused run changed nothing. */
async function hostStates(lab: Lab): Promise<string[]> {
  return Promise.all(lab.state.hosts.map((h) => onHost(lab, h.index, sh`systemctl is-active etcd; systemctl is-enabled etcd; systemctl show -p MainPID --value etcd; ls -d /var/lib/etcd* /var/lib/.etcd-rescue-* 2>/dev/null; ls /var/lib/etcd/member`)))
}

/** The lab's inventory copied elsewhere, with extra host_vars for one host. */
function inventoryWith(lab: Lab, host: string, vars: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'kubespray-inv-'))
  cpSync(lab.paths.inventory, join(dir, 'inventory.ini'))
  cpSync(lab.paths.groupVars, join(dir, 'group_vars'), { recursive: true })
  mkdirSync(join(dir, 'host_vars'))
  writeFileSync(join(dir, 'host_vars', `${host}.yml`), vars)
  return join(dir, 'inventory.ini')
}

/** Loads keys, backs up, loses quorum (two members stopped, their WAL gone; one survivor runs), recovers, proves it. */
async function quorumLossRecovery(lab: Lab) {
  const becomePassword = passwordOf(lab)
  const load = await clusterLoad(lab, { keys: 300, seed: lab.name })
  const members = membersOf(loadInventory(lab.paths.inventory)).members
  // Kubespray's defaults, with no etcd variable in the inventory.
  expect(members.map((m) => [m.service, m.serviceName, m.dataDir, m.clientUrl.split(':')[0]])).toEqual(members.map(() => ['systemd', 'etcd', DATA, 'https']))

  const b = await backup({ members, outDir: mkdtempSync(join(tmpdir(), 'sd-backup-')), ui: captureUi(), becomePassword })
  expect(b.revision).toBeGreaterThanOrEqual(load.revision)

  for (const i of [2, 3]) await onHost(lab, i, sh`systemctl stop etcd && rm -rf ${`${DATA}/member/wal`}`)
  const survivor = (await onHost(lab, 1, sh`systemctl show -p MainPID --value etcd`)).trim()
  expect(Number(survivor)).toBeGreaterThan(0)

  const ui = captureUi()
  const started = recordCommandStarts()
  const r = await recover({ inventory: lab.paths.inventory, snapshot: b.file, ui, becomePassword }).finally(() => started.stop())
  expect(r.exitCode, `${r.message}\n${ui.text()}`).toBe(0)
  // The quorum wait polls TLS members through the gateway, over the SSH connection: no
  // etcdctl (no login shell) per probe. Verification reads hashkv over gRPC (TLS, ALPN h2)
  // on the same kind of connection: no etcdctl either.
  for (const m of members) {
    expect(started.during('quorum', m.name).filter((t) => t.includes('etcdctl')), `${m.name}: etcdctl started while waiting for quorum`).toEqual([])
    expect(started.during('verify', 'cluster', m.name).filter((t) => t.includes('etcdctl')), `${m.name}: etcdctl started to verify`).toEqual([])
  }
  expect(r.checks.every((c) => c.ok), JSON.stringify(r.checks)).toBe(true)
  // Every member gave the same hash, at one revision: read over gRPC.
  expect(r.checks.find((c) => c.name === 'hashkv')?.detail).toMatch(/^equal on all members at revision \d+ \(\d+\)$/)
  expect(ui.text()).toMatch(new RegExp(`etcd (stopped|killed after 3 s of systemctl stop) \\(was active, pid ${survivor}\\)`))
  await expectAllKeys(lab, load.manifest)

  for (const h of lab.state.hosts) {
    const out = await onHost(lab, h.index, sh`systemctl is-active etcd; systemctl is-enabled etcd; ps -o user= -p "$(systemctl show -p MainPID --value etcd)"; stat -c '%U %a' ${DATA}; find ${DATA} ! -user etcd | wc -l; ls -d ${DATA}.etcd-rescue-old-*/member`)
    const [active, enabled, runsAs, dirOwner, notEtcd, aside] = out.trim().split('\n')
    expect({ active, enabled, runsAs, dirOwner, notEtcd, hasAside: !!aside }, h.name).toEqual({ active: 'active', enabled: 'enabled', runsAs: 'etcd', dirOwner: 'etcd 700', notEtcd: '0', hasAside: true })
    // Nothing of the hold is left: no drop-in loaded or on disk, no hold file, nothing for a reload to pick up.
    expect(await onHost(lab, h.index, sh`systemctl show -p DropInPaths -p NeedDaemonReload etcd; ls -d /run/systemd/system/etcd.service.d /run/etcd-rescue 2>/dev/null | wc -l`), h.name).toBe('DropInPaths=\nNeedDaemonReload=no\n0\n')
  }
  return { members, snapshot: b.file }
}

const runCli = (args: string[], input?: string) => runRecover(args, input)

/**
 * Every remote command started in this process (an SSH exec, or a step sent on a
 * run's persistent session), in order with the journal's records, to tell which
 * phase started it.
 */
function recordCommandStarts() {
  const spawn = SshHost.prototype.spawn
  const step = StepSession.prototype.run
  const add = Journal.prototype.add
  type Event = { command: string; host: string } | { record: PhaseRecord }
  const log: Event[] = []
  const spies = [
    vi.spyOn(SshHost.prototype, 'spawn').mockImplementation(function (this: SshHost, command, options) {
      log.push({ host: this.name, command: command.text })
      return spawn.call(this, command, options)
    }),
    vi.spyOn(StepSession.prototype, 'run').mockImplementation(function (this: StepSession, script, options) {
      log.push({ host: (this as unknown as { hostName: string }).hostName, command: script.text })
      return step.call(this, script, options)
    }),
    vi.spyOn(Journal.prototype, 'add').mockImplementation(function (this: Journal, ...args) {
      const record = add.apply(this, args)
      log.push({ record })
      return record
    }),
  ]
  return {
    stop: () => spies.forEach((s) => s.mockRestore()),
    /** The scripts started on `host` after the phase before `phase` ended, until `phase` ended for `journalHost` (that host by default). */
    during(phase: string, journalHost: string, host = journalHost): string[] {
      const isRecord = (e: Event): e is { record: PhaseRecord } => 'record' in e
      const first = log.findIndex((e) => isRecord(e) && e.record.phase === phase)
      const from = first - 1 - log.slice(0, first).reverse().findIndex(isRecord)
      const to = log.findIndex((e) => isRecord(e) && e.record.phase === phase && e.record.host === journalHost)
      if (first < 0 || from >= first || to < 0) throw new Error(`no ${phase} record for ${journalHost}`)
      return log.slice(from + 1, to).flatMap((e) => (!isRecord(e) && e.host === host ? [e.command] : []))
    },
  }
}

describe('kubespray-style members, etcd 3.5.30, TLS, passwordless sudo, Restart=on-failure, /bin/sh is bash (as on RHEL)', () => {
  // Every remote step runs under /bin/sh: here bash in POSIX mode, where the other suites have dash.
  const ctx = useLab({ hosts: 3, init: 'systemd', tls: true, sudo: 'nopasswd', etcd: '3.5.30', binSh: 'bash' })

  it('runs its hosts with bash as /bin/sh', async () => {
    expect(await binShIsBash(ctx.lab)).toBe(true)
  })

  it('refuses, before any change, what would keep the restored member from starting as itself: a data dir the unit does not run, a missing client certificate, a masked unit, a unit left from a recovery by hand, an expired peer certificate', async () => {
    const { lab } = ctx
    const b = await backup({ members: membersOf(loadInventory(lab.paths.inventory)).members, outDir: mkdtempSync(join(tmpdir(), 'sd-backup-')), ui: captureUi() })
    const before = await hostStates(lab)

    const h2 = lab.state.hosts[1].name
    const wrongDir = await recover({ inventory: inventoryWith(lab, h2, 'etcd_data_dir: /srv/etcd\n'), snapshot: b.file, ui: captureUi() })
    expect(wrongDir.exitCode, wrongDir.message).toBe(3)
    expect(wrongDir.message).toContain('etcd2')
    expect(wrongDir.message).toContain('- data dir: /srv/etcd')
    expect(wrongDir.message).toContain('+ data dir: /var/lib/etcd   (ETCD_DATA_DIR in /etc/etcd.env)')

    const cert = `/etc/ssl/etcd/ssl/admin-${h2}.pem`
    await onHost(lab, 2, sh`mv ${cert} ${`${cert}.away`}`)
    try {
      const noCert = await recover({ inventory: lab.paths.inventory, snapshot: b.file, ui: captureUi() })
      expect(noCert.exitCode, noCert.message).toBe(3)
      expect(noCert.message).toContain(`TLS file ${cert} does not exist`)
    } finally {
      await onHost(lab, 2, sh`mv ${`${cert}.away`} ${cert}`)
    }

    // Masked, as an operator masks a member to stop it flapping: the unit's name a link to
    // /dev/null (what `systemctl mask` makes where kubespray's unit file is not in its way).
    const unit = '/etc/systemd/system/etcd.service'
    await onHost(lab, 3, sh`mv ${unit} ${`${unit}.away`} && ln -s /dev/null ${unit} && systemctl daemon-reload`)
    try {
      const masked = await recover({ inventory: lab.paths.inventory, snapshot: b.file, ui: captureUi() })
      expect(masked.exitCode, masked.message).toBe(3)
      expect(masked.message).toContain('etcd3')
      expect(masked.message).toContain('etcd is masked, so it could not be started after the restore: unmask it (systemctl unmask etcd), then run again')
    } finally {
      await onHost(lab, 3, sh`rm ${unit} && mv ${`${unit}.away`} ${unit} && systemctl daemon-reload`)
    }

    // Left from a recovery tried by hand: --force-new-cluster would make each restored member a
    // cluster of its own; a WAL dir apart from the data dir would start etcd on the old WAL;
    // ExecStart pointed at an etcd that is not there (a half-done upgrade).
    const dropIn = '/run/systemd/system/etcd.service.d/zz-test-by-hand.conf'
    await onHost(lab, 1, sh`mkdir -p /run/systemd/system/etcd.service.d && printf '[Service]\nEnvironment=ETCD_FORCE_NEW_CLUSTER=true ETCD_WAL_DIR=/var/lib/etcd-wal\nExecStart=\nExecStart=/opt/etcd-3.6/etcd\n' > ${dropIn} && systemctl daemon-reload`)
    try {
      const byHand = await recover({ inventory: lab.paths.inventory, snapshot: b.file, ui: captureUi() })
      expect(byHand.exitCode, byHand.message).toBe(3)
      expect(byHand.message).toContain('etcd1')
      expect(byHand.message).toContain('etcd starts etcd with --force-new-cluster (ETCD_FORCE_NEW_CLUSTER in Environment=)')
      expect(byHand.message).toContain('etcd keeps etcd\'s WAL apart from its data dir (--wal-dir /var/lib/etcd-wal,')
      expect(byHand.message).toContain('etcd runs /opt/etcd-3.6/etcd, which is not there or not executable: systemd could not start it')
    } finally {
      await onHost(lab, 1, sh`rm ${dropIn} && systemctl daemon-reload`)
    }

    // An expired peer certificate (a common cause of the quorum loss itself), made on the host
    // with openssl ca (openssl req cannot back-date) and named in kubespray's /etc/etcd.env.
    const expired = '/etc/ssl/etcd/ssl/member-expired.pem'
    await onHost(lab, 2, sh`set -e; d=$(mktemp -d); cd "$d"; : > index.txt; echo 01 > serial
printf '[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\nnew_certs_dir=.\nserial=serial\ndefault_md=sha256\npolicy=p\n[p]\ncommonName=supplied\n' > ca.cnf
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout k.pem -out r.csr -subj /CN=old 2>/dev/null
openssl ca -batch -config ca.cnf -selfsign -keyfile k.pem -in r.csr -out ${expired} -startdate 20200101000000Z -enddate 20210101000000Z 2>/dev/null
cd /; rm -rf "$d"; cp -p /etc/etcd.env /etc/etcd.env.away
sed -i ${`s|^ETCD_PEER_CERT_FILE=.*|ETCD_PEER_CERT_FILE=${expired}|`} /etc/etcd.env`)
    try {
      const old = await recover({ inventory: lab.paths.inventory, snapshot: b.file, ui: captureUi() })
      expect(old.exitCode, old.message).toBe(3)
      expect(old.message).toContain(`etcd's etcd is told to use ${expired} (ETCD_PEER_CERT_FILE in /etc/etcd.env), which expired on Jan 1 00:00:00 2021 GMT (by this host's clock)`)
    } finally {
      await onHost(lab, 2, sh`mv /etc/etcd.env.away /etc/etcd.env && rm -f ${expired}`)
    }
    expect(await hostStates(lab)).toEqual(before)
  })

  it('recovers after a quorum loss with one survivor running, over TLS, data owned by etcd, units active', async () => {
    await quorumLossRecovery(ctx.lab)
  })

  it('holds etcd.service from stop to start: any start meanwhile fails; the next run lifts the hold', async () => {
    const { lab } = ctx
    const members = membersOf(loadInventory(lab.paths.inventory)).members
    const b = await backup({ members, outDir: mkdtempSync(join(tmpdir(), 'sd-backup-')), ui: captureUi() })
    for (const i of [2, 3]) await onHost(lab, i, sh`systemctl stop etcd && rm -rf ${`${DATA}/member/wal`}`)
    const first = await recover({ inventory: lab.paths.inventory, snapshot: b.file, ui: captureUi(), stopAfter: 'swap' })
    expect(first.exitCode, first.message).toBe(1)
    expect(first.message).toMatch(/stopped after swap/)
    // Armed beside each restore, so the stop step found it loaded.
    for (const m of members) expect(first.message).toContain(`${m.name}: restore: restored rev`)
    expect(first.message.match(/'s hold armed \(its drop-in \/run\/systemd\/system\/etcd\.service\.d\/zz-etcd-rescue-hold\.conf, inert until the stop\)/g)).toHaveLength(3)
    // Every member's restored data is in place, its unit stopped and held: whoever starts it
    // (a person, an agent, a dependency) is refused, and so is Restart= after a crash.
    for (const h of lab.state.hosts) {
      const out = await onHost(lab, h.index, sh`systemctl start etcd 2>&1; echo "start=$?"; systemctl is-active etcd; systemctl status etcd --no-pager 2>&1 | grep -c 'AssertPathExists=!/run/etcd-rescue/etcd.service.hold was not met'`)
      expect(out, h.name).toMatch(/Assertion failed on job for etcd\.service\.\nstart=1\ninactive\n1\n$/)
    }
    // The next run's restores are done already, so its stop steps load the drop-in themselves:
    // take it away (the hold files stay) to make them.
    for (const h of lab.state.hosts) await onHost(lab, h.index, sh`rm /run/systemd/system/etcd.service.d/zz-etcd-rescue-hold.conf && systemctl daemon-reload`)
    const ui = captureUi()
    const second = await recover({ inventory: lab.paths.inventory, snapshot: b.file, ui })
    expect(second.exitCode, `${second.message}\n${ui.text()}`).toBe(0)
    expect(second.warnings.filter((w) => w.includes('is held by an earlier etcd-rescue run'))).toHaveLength(3)
    expect(second.journal.records.filter((r) => r.phase === 'restore').map((r) => r.outcome)).toEqual(['skipped', 'skipped', 'skipped'])
    for (const h of lab.state.hosts) {
      const out = await onHost(lab, h.index, sh`systemctl is-active etcd; systemctl show -p DropInPaths -p NeedDaemonReload etcd; ls -d /run/systemd/system/etcd.service.d /run/etcd-rescue 2>/dev/null | wc -l`)
      expect(out, h.name).toBe('active\nDropInPaths=\nNeedDaemonReload=no\n0\n')
    }
  })

  it('stops no member when the unit changed after preflight: a file edited (NeedDaemonReload=yes at the hold), or a new unit file the hold\'s reload loads unflagged; the next run checks it and recovers', async () => {
    const { lab } = ctx
    const members = membersOf(loadInventory(lab.paths.inventory)).members
    const b = await backup({ members, outDir: mkdtempSync(join(tmpdir(), 'sd-backup-')), ui: captureUi() })
    const running = () => Promise.all(lab.state.hosts.map((h) => onHost(lab, h.index, sh`systemctl is-active etcd; systemctl show -p MainPID --value etcd`)))
    const before = await running()
    const stopsNone = (r: Awaited<ReturnType<typeof recover>>) => {
      expect(r.message).toContain('No member was stopped and no data was moved')
      expect(r.journal.records.filter((x) => x.phase === 'stop')).toEqual([])
    }

    // etcd2's unit file touched once preflight is done (as its restore begins): systemd flags
    // it, and the hold does not reload it in unchecked.
    let touched = false
    const edited = await recover({
      inventory: lab.paths.inventory, snapshot: b.file,
      ui: hookedUi({ step: (host, step) => { if (host === 'etcd2' && step === 'restore' && !touched) { onHostNow(lab, 2, 'touch /etc/systemd/system/etcd.service'); touched = true } } }),
    })
    expect(touched).toBe(true)
    expect(edited.exitCode, edited.message).toBe(1)
    expect(edited.message).toContain('restore failed on etcd2 (etcd2: etcd has changed since preflight read it (NeedDaemonReload=yes: a file of it changed on disk and is not loaded yet;')
    stopsNone(edited)
    expect(await running()).toEqual(before)
    await onHost(lab, 2, sh`systemctl daemon-reload`)

    // A copy of the unit in a directory that takes precedence over /etc/systemd/system: systemd
    // does not flag it (NeedDaemonReload=no, systemd issue 4500), so preflight reads (and checks)
    // the unit as loaded; the hold's reload loads the copy. (A drop-in dir made after the unit
    // was loaded goes unflagged too on older systemd (issue 31752), but not every time: seen
    // flagged here after earlier reloads.)
    const unit = '/etc/systemd/system.control/etcd.service'
    await onHost(lab, 2, sh`mkdir -p /etc/systemd/system.control && sed 's/^\\[Service\\]$/[Service]\\nEnvironment=GOMAXPROCS=1/' /etc/systemd/system/etcd.service > ${unit}`)
    try {
      expect(await onHost(lab, 2, sh`systemctl show -p FragmentPath -p NeedDaemonReload etcd`)).toBe('FragmentPath=/etc/systemd/system/etcd.service\nNeedDaemonReload=no\n')
      const first = await recover({ inventory: lab.paths.inventory, snapshot: b.file, ui: captureUi() })
      expect(first.exitCode, first.message).toBe(1)
      // The reason, in the summary; what changed, with where the member stands.
      expect(first.message).toContain('restore failed on etcd2 (etcd2: etcd has changed since preflight read it (Environment FragmentPath differ as loaded now; systemd need not flag a new unit file or drop-in dir, which a reload loads)')
      expect(first.message).toContain('run again, and preflight checks the unit as it is now |   - Environment= |   + Environment=GOMAXPROCS=1)')
      stopsNone(first)
      expect(await running()).toEqual(before)
      // Run again: preflight reads the unit as systemd has it loaded now, and it agrees.
      const ui = captureUi()
      const again = await recover({ inventory: lab.paths.inventory, snapshot: b.file, ui })
      expect(again.exitCode, `${again.message}\n${ui.text()}`).toBe(0)
      // Each failed run left a restore (its own token) on the members it restored; the next run's
      // restore removed it, so none is left however many runs failed.
      const restores = again.journal.records.filter((r) => r.phase === 'restore')
      for (const name of ['etcd1', 'etcd3']) expect(restores.find((r) => r.host === name)?.detail, name).toMatch(/; removed the restore dir an earlier run left \(\/var\/lib\/\.etcd-rescue-etcd\/restore-etcd-rescue-[^)]*\)$/)
      for (const h of lab.state.hosts) expect(await onHost(lab, h.index, sh`ls -d /var/lib/.etcd-rescue-etcd/restore-* /var/lib/etcd/.etcd-rescue-restore-* 2>/dev/null | wc -l`), h.name).toBe('0\n')
    } finally {
      await onHost(lab, 2, sh`rm -f ${unit}; rmdir /etc/systemd/system.control 2>/dev/null; systemctl daemon-reload`)
    }
  })

  it('drills a quorum loss on the staging inventory, reading and writing keys over TLS', async () => {
    await quorumLossDrill(ctx.lab)
  })
})

describe('kubespray-style members, etcd 3.4.23, TLS, sudo asking a password (-K), Restart=always', () => {
  const ctx = useLab({ hosts: 3, init: 'systemd', tls: true, sudo: 'password', etcdRestart: 'always', etcd: '3.4.23' })

  it('without -K refuses in preflight (exit 3) saying sudo wants a password; with -K on stdin, --check passes', async () => {
    const { lab } = ctx
    const b = await backup({ members: membersOf(loadInventory(lab.paths.inventory)).members, outDir: mkdtempSync(join(tmpdir(), 'sd-backup-')), ui: captureUi(), becomePassword: passwordOf(lab) })
    const before = await hostStates(lab)
    const without = runCli(['--inventory', lab.paths.inventory, '--snapshot', b.file, '--yes', '--plain'])
    expect(without.status, without.stderr).toBe(3)
    expect(without.stderr).toContain('sudo: a password is required')
    expect(without.stderr).toContain('pass -K (--ask-become-pass)')
    const password = passwordOf(lab)!
    const withK = runCli(['--inventory', lab.paths.inventory, '--snapshot', b.file, '--check', '--plain', '-K'], `${password}\n`)
    expect(withK.status, withK.stdout + withK.stderr).toBe(0)
    expect(withK.stdout + withK.stderr).not.toContain(password)
    const wrongK = runCli(['--inventory', lab.paths.inventory, '--snapshot', b.file, '--check', '--plain', '-K'], 'not-the-password\n')
    expect(wrongK.status).toBe(3)
    expect(wrongK.stderr).toContain('sudo refused the become password')
    expect(await hostStates(lab)).toEqual(before)
  })

  it('recovers after a quorum loss with one survivor running, over TLS, data owned by etcd, units active', async () => {
    await quorumLossRecovery(ctx.lab)
  })

  it('drills a quorum loss on the staging inventory, reading and writing keys over TLS', async () => {
    await quorumLossDrill(ctx.lab)
  })
})

/** A drill on the lab's own inventory, marked as a staging cluster: keys written and read back over TLS. */
async function quorumLossDrill(lab: Lab) {
  mkdirSync(join(lab.paths.groupVars, 'etcd'), { recursive: true })
  writeFileSync(join(lab.paths.groupVars, 'etcd', 'drill.yml'), 'etcd_drill_allowed: true\n')
  const ui = captureUi()
  const r = await drill({ inventory: lab.paths.inventory, yes: true, scenario: 'quorum-loss', keys: 200, backupDir: mkdtempSync(join(tmpdir(), 'sd-drill-')), becomePassword: passwordOf(lab), ui })
  expect(r.result, `${r.error}\n${ui.text()}`).toBe('verified')
  expect(r.keysChecked).toBe(200)
  expect(r.recovery?.exitCode).toBe(0)
}

// Safety by construction, against real sshd and etcd on lab hosts: hostile
// values in every field a script builder takes run nothing under dash or bash;
// a data dir full of shell syntax recovers end to end; one run at a time per
// member; a timed-out step is ended on the host, not just its channel.
import { describe, expect, it } from 'vitest'
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, posix } from 'node:path'
import { clusterLoad, clusterStart, sshExec } from '../../lib/lab/index.ts'
import { loadInventory, membersOf } from '../../lib/inventory/members.ts'
import { recover } from '../../lib/recover/recover.ts'
import { backup } from '../../lib/backup/backup.ts'
import { SshHost } from '../../lib/ssh/connection.ts'
import { acquireLock, lockScript } from '../../lib/recover/lock.ts'
import { memberPaths } from '../../lib/plan/paths.ts'
import { closingScript, completeScript, logTailScript, restoreScript, swapScript, startScript, stopScript, uploadScript, unUploadScript } from '../../lib/plan/scripts.ts'
import { probeScript } from '../../lib/plan/facts.ts'
import { findPidsScript, startCommand } from '../../lib/etcd/process.ts'
import { etcdctlArgv, restoreArgv, snapshotStatusArgv } from '../../lib/etcd/etcdctl.ts'
import { killScript, wreckScript } from '../../lib/drill/disaster.ts'
import { joinScripts, sh, trusted, type Script } from '../../lib/shell/sh.ts'
import { ExitCode } from '../../lib/errors.ts'
import { captureUi, gateway, onHost, useLab } from '../support/lab.ts'

/** Each hostile value would create /tmp/INJECTED-<tag> if any shell ran it as code. */
const hostile = (tag: string) => [
  `$(touch /tmp/INJECTED-${tag})`,
  `\`touch /tmp/INJECTED-${tag}\``,
  `x;touch /tmp/INJECTED-${tag}`,
  `x && touch /tmp/INJECTED-${tag}`,
  `x|touch /tmp/INJECTED-${tag}`,
  `x' ; touch /tmp/INJECTED-${tag} ; '`,
  `x" ; touch /tmp/INJECTED-${tag} ; "`,
  `x\\" ; touch /tmp/INJECTED-${tag} ; \\"`,
  `x\ntouch /tmp/INJECTED-${tag}\n`,
  `$(touch\${IFS}/tmp/INJECTED-${tag})`,
  '-rf * ? [a] ~root',
]

/** Every script builder, with `v` in every field it takes from the inventory or a host. */
function everyScript(v: string): Array<[string, Script]> {
  const path = `/var/tmp/hostile/${v}`
  const url = `http://198.18.0.1:2380/${v}`
  const paths = memberPaths(path, 'a'.repeat(64), 'tok', '20260101T000000Z', false)
  const mpaths = memberPaths(path, 'a'.repeat(64), 'tok', '20260101T000000Z', true)
  const stop = { service: 'process' as const, serviceName: v, dataDir: path, ports: [65001, 65002] }
  const proc = { etcdBin: `${path}/etcd`, name: v, dataDir: path, peerUrl: url, clientUrl: url, logFile: `${path}/log`, bootstrap: { initialCluster: `${v}=${url}`, token: v } }
  const restore = { tool: 'etcdctl' as const, bin: `${path}/etcdctl`, name: v, initialCluster: `${v}=${url}`, token: v, peerUrl: url, skipHashCheck: true }
  const tls = { cacert: `${path}/ca.pem`, cert: `${path}/c.pem`, key: `${path}/k.pem` }
  return [
    ['upload', uploadScript(paths, v, 1024)],
    ['un-upload', unUploadScript(paths, v, true)],
    ['stop process', stopScript(stop)],
    ['stop systemd', stopScript({ ...stop, service: 'systemd' })],
    ['restore', restoreScript({ paths, ports: [65001, 65002], sha256: v, mountpoint: false, etcdUser: v, restore })],
    ['restore mountpoint', restoreScript({ paths: mpaths, ports: [65001, 65002], sha256: v, mountpoint: true, etcdUser: v, restore })],
    ['swap', swapScript({ paths, ports: [65001, 65002], sha256: v, token: v, mountpoint: false, etcdUser: v })],
    ['swap mountpoint', swapScript({ paths: mpaths, ports: [65001, 65002], sha256: v, token: v, mountpoint: true, etcdUser: v })],
    ['complete', completeScript(paths, v, v)],
    ['closing (mark, then tidy)', closingScript(paths, v, v, v)],
    ['closing, nothing kept', closingScript(mpaths, v, v)],
    ['start process', startScript({ ...stop, process: proc, restored: { state: `${path}/state`, mark: v } })],
    ['start systemd', startScript({ ...stop, service: 'systemd', process: proc, restored: { state: `${path}/state`, mark: v } })],
    ['log tail process', logTailScript({ service: 'process', serviceName: v, logFile: `${path}/log` })],
    ['log tail systemd', logTailScript({ service: 'systemd', serviceName: v, logFile: `${path}/log` })],
    ['probe', probeScript({ dataDir: path, binDir: path, work: `${path}/w`, snapshot: `${path}/s.db`, snapshotSize: 1, snapshotSha: v, ports: [65001, 65002], service: 'systemd', serviceName: v })],
    ['find pids', findPidsScript(path, [65001])],
    ['start command', startCommand(proc)],
    ['etcdctl', sh`${etcdctlArgv(`${path}/etcdctl`, url, tls, ['endpoint', 'status', v])}`],
    ['restore argv', sh`${restoreArgv({ ...restore, snapshot: `${path}/s.db`, dataDir: path })}`],
    ['snapshot status', sh`${snapshotStatusArgv('etcdutl', `${path}/etcdutl`, `${path}/s.db`)}`],
    ['drill kill', killScript(path, [65001])],
    ['drill wreck', wreckScript(path)],
    ['lock', lockScript(path, v, 0)],
  ]
}

describe('safety on etcd 3.4.23 (3 hosts)', () => {
  const ctx = useLab({ hosts: 3 })

  it('runs no hostile value as code, in any script builder, under dash or bash', async () => {
    const scripts = hostile('v').flatMap((v, i) => everyScript(v).map(([name, s], j) => ({ file: `${i}-${j}.sh`, name, s })))
    // The canary proves the check can fail: the one script that pastes the value in unquoted.
    scripts.push({ file: 'canary.sh', name: 'canary', s: trusted(`echo ${hostile('canary')[0]}`) })
    const install = joinScripts([
      sh`set -e; rm -rf /tmp/INJECTED-* /var/tmp/hostile; d=$(mktemp -d); mkdir -p /var/tmp/hostile`,
      ...scripts.map((x) => sh`printf '%s\\n' ${x.s.text} > "$d"/${x.file}`),
      // Each script under both shells, stdin closed, bounded; their own failures are expected and ignored.
      sh`cd /var/tmp/hostile; for f in "$d"/*.sh; do for shell in dash bash; do timeout 15 "$shell" "$f" </dev/null >/dev/null 2>&1 || true; done; done`,
      sh`ls /tmp | grep '^INJECTED-' || true`,
    ])
    const r = await sshExec(ctx.lab, 1, sh`sh -s`, { input: install.text, timeoutMs: 280_000 })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.split('\n').filter(Boolean)).toEqual(['INJECTED-canary'])
    expect(scripts.length).toBeGreaterThan(200)
    await onHost(ctx.lab, 1, sh`rm -f /tmp/INJECTED-canary`)
  })

  it('recovers a cluster whose data dir is full of shell syntax, and runs none of it', async () => {
    const { lab } = ctx
    await clusterStart(lab, { wipe: true })
    const load = await clusterLoad(lab, { keys: 200, seed: lab.name })
    const dir = mkdtempSync(join(tmpdir(), 'hostile-inv-'))
    writeFileSync(join(dir, 'hosts.ini'), readFileSync(lab.paths.inventory, 'utf8'))
    // group_vars beat [etcd:vars]: the data dir of every member becomes this.
    const dataDir = "/var/lib/etcd data/it's $(touch /tmp/INJECTED-dd) `touch /tmp/INJECTED-bq` \"q\";touch /tmp/INJECTED-semi"
    mkdirSync(join(dir, 'group_vars'))
    writeFileSync(join(dir, 'group_vars', 'etcd.yml'), `etcd_data_dir: ${JSON.stringify(dataDir)}\n`)
    const members = membersOf(loadInventory(join(dir, 'hosts.ini'))).members
    expect(members[0].dataDir).toBe(dataDir)
    for (const i of [1, 2, 3]) await onHost(lab, i, sh`mkdir -p ${posix.dirname(dataDir)}`)
    const out = mkdtempSync(join(tmpdir(), 'hostile-backup-'))
    const b = await backup({ members, outDir: out, ui: captureUi() })

    const r = await recover({ inventory: join(dir, 'hosts.ini'), snapshot: b.file, ui: captureUi() })
    expect(r.exitCode, r.message).toBe(ExitCode.OK)
    for (const i of [1, 2, 3]) {
      expect(await onHost(lab, i, sh`ls /tmp | grep '^INJECTED' || true`)).toBe('')
      expect(await onHost(lab, i, sh`test -d ${`${dataDir}/member`} && echo yes`)).toBe('yes\n')
    }
    for (const m of members) {
      const kvs = await gateway(m.clientUrl).rangePrefix('/etcd-rescue/load/', { serializable: true })
      expect(kvs.length, m.name).toBe(Object.keys(load.manifest).length)
    }
  })

  it('lets one run at a time hold a member: refuses, waits, and takes over a dropped run', async () => {
    const { lab } = ctx
    await clusterStart(lab, { wipe: true }).catch(() => undefined)
    const members = membersOf(loadInventory(lab.paths.inventory)).members
    const out = mkdtempSync(join(tmpdir(), 'lock-backup-'))
    const b = await backup({ members, outDir: out, ui: captureUi() })
    const m = members[1]
    const holderHost = await SshHost.connect(m.name, m.ssh)
    const held = await acquireLock(holderHost, m.dataDir, { waitSeconds: 0, owner: 'host=other-laptop pid=4242 since=2026-11-25T03:00:00Z cmd=recover.mjs' })

    // A second run: refused at once, exit 3, the holder named.
    const refused = await recover({ inventory: lab.paths.inventory, snapshot: b.file, check: true, ui: captureUi() })
    expect(refused.exitCode).toBe(ExitCode.PREFLIGHT)
    expect(refused.message).toContain(m.name)
    expect(refused.message).toContain('host=other-laptop pid=4242 since=2026-11-25T03:00:00Z')

    // With --wait-lock it waits, and goes on once the holder releases.
    const ui = captureUi()
    const waiting = recover({ inventory: lab.paths.inventory, snapshot: b.file, check: true, ui, waitLockSeconds: 60 })
    await new Promise((r) => setTimeout(r, 2000))
    await held.release()
    const waited = await waiting
    expect(waited.exitCode, waited.message).toBe(ExitCode.OK)
    expect(waited.journal.records.find((r) => r.phase === 'lock' && r.host === m.name)?.outcome).toBe('ok')

    // A holder whose connection drops without releasing: the lock is free, and the next run says whose it was.
    await acquireLock(holderHost, m.dataDir, { waitSeconds: 0, owner: 'host=dropped-laptop pid=7 since=2026-11-25T03:30:00Z cmd=recover.mjs' })
    holderHost.close()
    await new Promise((r) => setTimeout(r, 500))
    const ui2 = captureUi()
    const after = await recover({ inventory: lab.paths.inventory, snapshot: b.file, check: true, ui: ui2, waitLockSeconds: 30 })
    expect(after.exitCode, after.message).toBe(ExitCode.OK)
    expect(after.warnings.join('\n')).toMatch(/taking over the lock of a run that ended without releasing it \(host=dropped-laptop pid=7/)
  })

  it('ends a timed-out step on the host, process group and all', async () => {
    const m = membersOf(loadInventory(ctx.lab.paths.inventory)).members[2]
    const host = await SshHost.connect(m.name, m.ssh)
    try {
      const r = await host.exec(sh`sleep 311 & sleep 312; echo never`, { timeoutMs: 1500, allowFailure: true })
      expect(r.signal).toBe('TIMEOUT')
      expect(r.stderr).not.toContain('etcd-rescue-pgid')
      let left = -1
      for (let i = 0; i < 40 && left !== 0; i++) {
        await new Promise((res) => setTimeout(res, 250))
        left = Number((await onHost(ctx.lab, 3, sh`ps -eo args | grep -c '^sleep 31[12]$' || true`)).trim())
      }
      expect(left).toBe(0)
    } finally {
      host.close()
    }
  })
})

// recover() against real sshd and real etcd on lab hosts: the disasters of
// issue 4, and the refusals that must change nothing.
import { describe, expect, it } from 'vitest'
import { execFileSync, spawn } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { clusterKill, clusterLoad, clusterStart, type Lab } from '../../lib/lab/index.ts'
import { loadInventory, membersOf } from '../../lib/inventory/members.ts'
import { recover } from '../../lib/recover/recover.ts'
import { verifyCluster } from '../../lib/recover/verify.ts'
import { backup } from '../../lib/backup/backup.ts'
import { HostPool, connectAll } from '../../lib/task/hosts.ts'
import { Journal } from '../../lib/task/journal.ts'
import { startCommand } from '../../lib/etcd/process.ts'
import { sha256Hex } from '../../lib/lab/load.ts'
import { quote } from '../../lib/shell/quote.ts'
import { captureUi, gateway, onHost, useLab, fingerprint } from '../support/lab.ts'
import { runRecover } from '../support/cli.ts'

const PREFIX = '/etcd-rescue/load/'

/** Loads keys, takes a backup with backup(), and returns what to compare against. */
async function prepare(lab: Lab, keys: number, wipe = false) {
  await clusterStart(lab, { wipe })
  const load = await clusterLoad(lab, { keys, seed: lab.name })
  const members = membersOf(loadInventory(lab.paths.inventory)).members
  const out = mkdtempSync(join(tmpdir(), 'rescue-backup-'))
  const b = await backup({ members, outDir: out, ui: captureUi() })
  return { load, members, snapshot: b.file, revision: b.revision }
}

/** Every key of the load, read from each member alone, equal to what was written. */
async function expectAllKeys(members: Array<{ name: string; clientUrl: string }>, manifest: Record<string, string>) {
  for (const m of members) {
    const kvs = await gateway(m.clientUrl).rangePrefix(PREFIX, { serializable: true })
    const got = Object.fromEntries(kvs.map((kv) => [kv.key.toString(), sha256Hex(kv.value)]))
    expect(Object.keys(got).length, `${m.name} key count`).toBe(Object.keys(manifest).length)
    expect(got, `${m.name} values`).toEqual(manifest)
  }
}

const runCli = (args: string[]) => runRecover(args)

describe('recover on etcd 3.4.23 (3 hosts)', () => {
  const ctx = useLab({ hosts: 3 })

  it('refuses bad input and unreachable or impostor hosts before any change', async () => {
    const { load, members, snapshot } = await prepare(ctx.lab, 300)
    const before = await fingerprint(members)

    // A corrupted snapshot: exit 2, before any host is contacted.
    const bad = join(mkdtempSync(join(tmpdir(), 'bad-')), 'corrupt.db')
    copyFileSync(snapshot, bad)
    const bytes = readFileSync(bad)
    bytes[Math.floor(bytes.length / 2)] ^= 0xff
    writeFileSync(bad, bytes)
    const corrupt = runCli(['--inventory', ctx.lab.paths.inventory, '--snapshot', bad, '--yes'])
    expect(corrupt.status).toBe(2)
    expect(corrupt.stderr).toMatch(/integrity check failed/)

    // A wrong host key for one host: exit 3, naming the host and the fingerprint it saw.
    const khDir = mkdtempSync(join(tmpdir(), 'kh-'))
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(khDir, 'impostor')])
    const impostor = readFileSync(join(khDir, 'impostor.pub'), 'utf8').split(' ').slice(0, 2).join(' ')
    const lines = readFileSync(ctx.lab.paths.knownHosts, 'utf8').trim().split('\n')
    lines[1] = `${lines[1].split(' ')[0]} ${impostor}`
    writeFileSync(join(khDir, 'known_hosts'), `${lines.join('\n')}\n`)
    const inv = join(khDir, 'inventory.ini')
    writeFileSync(inv, readFileSync(ctx.lab.paths.inventory, 'utf8').replaceAll(ctx.lab.paths.knownHosts, join(khDir, 'known_hosts')))
    const wrongKey = runCli(['--inventory', inv, '--snapshot', snapshot, '--yes', '--plain'])
    expect(wrongKey.status).toBe(3)
    expect(wrongKey.stdout + wrongKey.stderr).toMatch(/etcd2.*does NOT match.*SHA256:/s)

    // One host does not answer (its link is down): exit 3 after the connect timeout.
    const veth = ctx.lab.state.hosts[2].veth!
    execFileSync('ip', ['link', 'set', 'dev', veth, 'down'])
    let silent
    try {
      silent = runCli(['--inventory', ctx.lab.paths.inventory, '--snapshot', snapshot, '--yes', '--connect-timeout', '2'])
    } finally {
      execFileSync('ip', ['link', 'set', 'dev', veth, 'up'])
    }
    expect(silent.status).toBe(3)
    expect(silent.stdout + silent.stderr).toMatch(/etcd3.*no SSH answer .* within 2 s/s)

    // --check: every check, the plan, no change.
    const check = runCli(['--inventory', ctx.lab.paths.inventory, '--snapshot', snapshot, '--check'])
    expect(check.status, check.stderr).toBe(0)
    expect(check.stdout).toMatch(/initial cluster +etcd1=http:\/\/198\.18\.\d+\.11:2380,etcd2=/)
    expect(check.stdout).toMatch(/cluster ID +[0-9a-f]+ \(predicted\)/)

    // Without --yes and without a terminal: refused, exit 2.
    const unconfirmed = runCli(['--inventory', ctx.lab.paths.inventory, '--snapshot', snapshot])
    expect(unconfirmed.status).toBe(2)
    expect(unconfirmed.stderr).toMatch(/--yes/)

    expect(await fingerprint(members)).toEqual(before)
    await expectAllKeys(members, load.manifest)
  })

  it('recovers from quorum loss: survivors stopped and restored, an unrelated etcd left running', async () => {
    const { lab } = ctx
    await clusterKill(lab)
    const { load, members, snapshot, revision } = await prepare(lab, 500, true)
    // An events cluster on host 1: another etcd, its own data dir and ports.
    const events = startCommand({
      etcdBin: `${lab.state.etcd.binDir}/etcd`, name: 'events', dataDir: '/var/lib/etcd-events',
      peerUrl: `http://${lab.state.hosts[0].address}:2383`, clientUrl: `http://${lab.state.hosts[0].address}:2382`,
      bootstrap: { initialCluster: `events=http://${lab.state.hosts[0].address}:2383`, token: 'events' },
    })
    await onHost(lab, 1, events)
    await new Promise((r) => setTimeout(r, 1500))
    const eventsPid = (await onHost(lab, 1, 'pgrep -f -- "--data-dir /var/lib/etcd-events"')).trim()
    expect(eventsPid).toMatch(/^\d+$/)
    await gateway(`http://${lab.state.hosts[0].address}:2382`).put('/events/x', 'kept')

    // Quorum lost for good: two members killed and wrecked; etcd3 keeps running alone.
    const pids3 = (await onHost(lab, 3, 'pgrep -x etcd')).trim()
    await clusterKill(lab, { hosts: [1, 2] })
    for (const i of [1, 2]) await onHost(lab, i, 'rm -rf /var/lib/etcd/member/wal')

    const ui = captureUi()
    const r = await recover({ inventory: lab.paths.inventory, snapshot, ui })
    expect(r.exitCode, `${r.message}\n${ui.text()}`).toBe(0)
    expect(r.checks.every((c) => c.ok)).toBe(true)
    expect(ui.text()).toMatch(new RegExp(`\\[etcd3\\] stop ok in [\\d.]+ s: stopped pid ${pids3}`))
    await expectAllKeys(members, load.manifest)
    expect(r.snapshot?.revision).toBe(revision)
    // Verified, so the copied snapshot (a whole copy of the data) is gone from every host; the
    // journal stays.
    expect(ui.text()).toMatch(/removed the copied snapshot from 3 of 3 hosts' work dirs \(3 file\(s\)\); the file you gave is yours to keep/)
    for (const i of [1, 2, 3]) expect(await onHost(lab, i, 'ls -A /var/lib/.etcd-rescue-etcd')).toBe('restore.log\nstate\n')
    // One login shell per host for the whole run: the session runs lock, preflight and every
    // later step, the snapshot comes over it, and the quorum wait and proofs start nothing via sshd.
    // (A host still holding the lock of an earlier run from this machine costs one more: the takeover, which warns.)
    const takeovers = (n: string) => r.warnings.filter((w) => w.startsWith(`${n}: taking over the lock`)).length
    expect(r.remoteCommands, ui.text()).toEqual({ etcd1: 1 + takeovers('etcd1'), etcd2: 1 + takeovers('etcd2'), etcd3: 1 + takeovers('etcd3') })
    for (const n of ['etcd1', 'etcd2', 'etcd3']) expect(r.roundTrips[n]).toBeGreaterThan(5)
    // The old data of every member is still there, set aside.
    for (const i of [1, 2, 3]) expect(await onHost(lab, i, 'ls -d /var/lib/etcd.etcd-rescue-old-*')).toMatch(/etcd-rescue-old-\d{8}T\d{6}Z/)
    // The events etcd was not touched.
    expect((await onHost(lab, 1, 'pgrep -f -- "--data-dir /var/lib/etcd-events"')).trim()).toBe(eventsPid)
    const kv = await gateway(`http://${lab.state.hosts[0].address}:2382`).rangePrefix('/events/')
    expect(kv.map((x) => x.value.toString())).toEqual(['kept'])

    // Health is not enough: the same healthy cluster, judged against the plan a
    // mistyped token would have made, fails on IDs while every member is healthy.
    const plan = r.plan!
    const typo = { ...plan, clusterId: '1', clusterIdHex: '1', members: plan.members.map((m) => ({ ...m, memberId: String(BigInt(m.memberId) ^ 1n) })) }
    const pool = new HostPool()
    await connectAll(members, pool, captureUi(), new Journal(), {}, members.length)
    try {
      const { checks } = await verifyCluster(typo, pool.hosts, revision)
      const verdict = Object.fromEntries(checks.map((c) => [c.name, c.ok]))
      expect(verdict).toMatchObject({ healthy: true, hashkv: true, 'cluster-id': false, 'member-ids': false, 'member-list': false })
    } finally {
      pool.closeAll()
    }
  })

  it('finishes an interrupted run without setting old data aside twice', async () => {
    const { lab } = ctx
    await clusterKill(lab)
    const { members } = await prepare(lab, 10, true)
    const load = await clusterLoad(lab, { keys: 50, seed: 'resume', prefix: '/resume/' })
    const b = await backup({ members, outDir: mkdtempSync(join(tmpdir(), 'rescue-backup-')), ui: captureUi() })
    const first = await recover({ inventory: lab.paths.inventory, snapshot: b.file, ui: captureUi(), stopAfter: 'swap' })
    expect(first.exitCode).toBe(1)
    expect(first.message).toMatch(/What this run changed:[\s\S]*etcd1: restore/)
    expect(first.message).toMatch(/run the same command again/)
    const asideAfterFirst = await Promise.all([1, 2, 3].map((i) => onHost(lab, i, 'ls -d /var/lib/etcd.etcd-rescue-old-* | wc -l')))

    const ui = captureUi()
    const second = await recover({ inventory: lab.paths.inventory, snapshot: b.file, ui })
    expect(second.exitCode, `${second.message}\n${ui.text()}`).toBe(0)
    expect(second.plan?.tokenSource).toBe('resumed')
    expect(second.plan?.token).toBe(first.plan?.token)
    expect(ui.text()).toMatch(/same snapshot already on this host/)
    expect(ui.text()).toMatch(/already restored by an earlier run/)
    const asideAfterSecond = await Promise.all([1, 2, 3].map((i) => onHost(lab, i, 'ls -d /var/lib/etcd.etcd-rescue-old-* | wc -l')))
    expect(asideAfterSecond).toEqual(asideAfterFirst)
    for (const m of members) {
      const kvs = await gateway(m.clientUrl).rangePrefix('/resume/', { serializable: true })
      expect(kvs.length).toBe(load.keys)
    }
  })
  it('refuses a member whose peer port another process holds, before any change', async () => {
    const { lab } = ctx
    await clusterKill(lab)
    const { snapshot } = await prepare(lab, 50, true)
    // etcd3 crashed, and something else took its peer port meanwhile.
    await clusterKill(lab, { hosts: [3] })
    const addr = lab.state.hosts[2].address
    const block = `echo $$ > /tmp/taker.pid; while ! python3 -c 'import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("${addr}", 2380)); s.listen(); time.sleep(600)' 2>/dev/null; do sleep 0.1; done`
    await onHost(lab, 3, `setsid -f sh -c ${quote(block)} >/dev/null 2>&1 </dev/null; n=0; until ss -Hltn 'sport = :2380' | grep -q . || [ $n -ge 100 ]; do n=$((n + 1)); sleep 0.1; done`)
    try {
      const before = await fingerprint(membersOf(loadInventory(lab.paths.inventory)).members)
      const r = await recover({ inventory: lab.paths.inventory, snapshot, ui: captureUi() })
      expect(r.exitCode, r.message).toBe(3)
      expect(r.message).toMatch(new RegExp(`etcd3: port 2380 on ${addr.replace(/\./g, '\\.')} is taken by python3 \\(pid \\d+\\), not by this member's etcd: the restored etcd could not listen there; stop it, then run again`))
      expect(await fingerprint(membersOf(loadInventory(lab.paths.inventory)).members)).toEqual(before)
    } finally {
      // By the process group setsid made, never by pattern.
      await onHost(lab, 3, 'kill -KILL -- -$(cat /tmp/taker.pid)')
    }
  })

  it('one member cannot start (its peer port taken): the others form a quorum, exit 4 with its log; a second run finishes the job', async () => {
    const { lab } = ctx
    await clusterKill(lab)
    const { snapshot } = await prepare(lab, 100, true)
    const b = { file: snapshot }
    // Something else holds etcd3's peer port once its etcd is stopped: it cannot start.
    const addr = lab.state.hosts[2].address
    const block = `echo $$ > /tmp/blocker.pid; while ! python3 -c 'import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("${addr}", 2380)); s.listen(); time.sleep(600)' 2>/dev/null; do sleep 0.1; done`
    await onHost(lab, 3, `setsid -f sh -c ${quote(block)} >/dev/null 2>&1 </dev/null`)
    const ui = captureUi()
    // The wait for etcd3 lasts the whole timeout; long enough for two members to elect a leader on a busy machine.
    const first = await recover({ inventory: lab.paths.inventory, snapshot: b.file, ui, timeoutMs: 20_000 })
    expect(first.exitCode, `${first.message}\n${ui.text()}`).toBe(4)
    expect(first.message).not.toMatch(/no healthy quorum/)
    expect(first.message).toMatch(/the cluster is up but verification failed:[\s\S]*✖ healthy: not healthy: etcd3\n/)
    expect(first.message).toMatch(/Members that did not come up:\n {2}etcd3: not healthy[\s\S]*last log lines:[\s\S]*address already in use/)
    expect(first.checks.find((c) => c.name === 'one-leader')?.ok).toBe(true)

    // By the process group setsid made, never by pattern: pkill -f would match this very shell.
    await onHost(lab, 3, 'kill -KILL -- -$(cat /tmp/blocker.pid)')
    const ui2 = captureUi()
    const second = await recover({ inventory: lab.paths.inventory, snapshot: b.file, ui: ui2 })
    expect(second.exitCode, `${second.message}\n${ui2.text()}`).toBe(0)
    expect(second.plan?.token).toBe(first.plan?.token)
    expect(ui2.text()).toMatch(/\[etcd1\] stop ok in [\d.]+ s: already running restored data: left alone/)
    expect(ui2.text()).toMatch(/\[etcd3\] restore ok in [\d.]+ s: already restored by an earlier run/)
  })
  it('completes with the same command after the first run was killed mid-restore', async () => {
    const { lab } = ctx
    await clusterKill(lab)
    const { load, members, snapshot } = await prepare(lab, 300, true)
    await clusterKill(lab)
    const before = await Promise.all([1, 2, 3].map((i) => onHost(lab, i, 'ls -d /var/lib/etcd.etcd-rescue-old-* 2>/dev/null | wc -l')))
    // Its own process group, so the kill reaches npx, zx and node, and nothing else.
    const child = spawn('npx', ['zx', 'scripts/recover.mjs', '--inventory', lab.paths.inventory, '--snapshot', snapshot, '--yes', '--plain'], {
      detached: true, env: { ...process.env, CI: 'true' }, stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d) => {
        out += d
        if (/^\[etcd\d\] restore ok/m.test(out)) resolve()
      })
      child.on('exit', () => reject(new Error(`finished before it could be killed:\n${out}`)))
    })
    process.kill(-child.pid!, 'SIGKILL')
    await new Promise((r) => child.on('exit', r))

    const report = join(mkdtempSync(join(tmpdir(), 'report-')), 'recover.json')
    const again = runCli(['--inventory', lab.paths.inventory, '--snapshot', snapshot, '--yes', '--plain', '--report', report])
    expect(again.status, again.stdout + again.stderr).toBe(0)
    expect(again.stdout).toMatch(/^member +connect +preflight +copy +restore +stop +swap +start +quorum$/m)
    // The machine-readable report: the plan, every phase per host, the proof.
    const json = JSON.parse(readFileSync(report, 'utf8'))
    expect(json).toMatchObject({ result: 'recovered', exitCode: 0, snapshot: { path: snapshot } })
    expect(json.plan.members.map((m: { name: string }) => m.name)).toEqual(['etcd1', 'etcd2', 'etcd3'])
    for (const phase of ['connect', 'preflight', 'copy', 'restore', 'stop', 'swap', 'start', 'quorum']) {
      for (const host of ['etcd1', 'etcd2', 'etcd3']) {
        const rec = json.phases.find((p: { name: string; host: string }) => p.name === phase && p.host === host)
        expect(rec, `${phase} on ${host}`).toMatchObject({ outcome: expect.stringMatching(/^(ok|skipped)$/), startedAt: expect.any(String), endedAt: expect.any(String) })
      }
    }
    expect(json.verification.every((c: { ok: boolean }) => c.ok)).toBe(true)
    expect(JSON.stringify(json)).not.toMatch(/PRIVATE KEY/)
    await expectAllKeys(members, load.manifest)
    // Old data was set aside once per member, whichever run did it.
    const after = await Promise.all([1, 2, 3].map((i) => onHost(lab, i, 'ls -d /var/lib/etcd.etcd-rescue-old-* | wc -l')))
    expect(after.map(Number)).toEqual(before.map((n) => Number(n) + 1))
  })
})

describe('recover on etcd 3.5.30 (3 hosts), data dir a mount point on one', () => {
  const ctx = useLab({ hosts: 3, etcd: '3.5.30' })

  it('recovers from total loss with etcdutl, moving a mount point\'s contents aside', async () => {
    const { lab } = ctx
    // Host 2's data dir is its own disk, with the lost+found a real filesystem has.
    await onHost(lab, 2, 'mkdir -p /var/lib/etcd && mount -t tmpfs -o size=256m,mode=0700 etcddisk /var/lib/etcd && mkdir /var/lib/etcd/lost+found')
    const { load, members, snapshot } = await prepare(lab, 400)
    await clusterKill(lab)
    for (const i of [1, 2, 3]) await onHost(lab, i, 'rm -rf /var/lib/etcd/member/wal; dd if=/dev/urandom of=/var/lib/etcd/member/snap/db bs=4096 count=4 conv=notrunc 2>/dev/null')

    const ui = captureUi()
    // Two hosts at a time: the copy reads the file once per batch.
    const r = await recover({ inventory: lab.paths.inventory, snapshot, ui, bumpRevision: 1000, forks: 2 })
    expect(r.exitCode, `${r.message}\n${ui.text()}`).toBe(0)
    expect(r.plan?.members.every((m) => m.restoreTool === 'etcdutl')).toBe(true)
    expect(r.checks.find((c) => c.name === 'revision')?.ok).toBe(true)
    await expectAllKeys(members, load.manifest)
    // Still a mount point, with lost+found, the restored member and the old contents beside.
    expect(await onHost(lab, 2, 'mountpoint -q /var/lib/etcd && echo mounted; ls -A /var/lib/etcd | sort')).toMatch(/mounted\netcd-rescue-old-\d{8}T\d{6}Z\nlost\+found\nmember/)
    expect(await onHost(lab, 2, 'ls -A /var/lib/etcd/etcd-rescue-old-*')).toMatch(/member/)
    for (const i of [1, 3]) expect(await onHost(lab, i, 'ls -A /var/lib/etcd.etcd-rescue-old-*')).toMatch(/member/)
  })
})

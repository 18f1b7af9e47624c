// --relay and --snapshot HOST:PATH on a lab of real sshd and etcd: the snapshot
// reaches every member verified there, hops pin the host key the operator
// verified, a member the hop cannot reach gets a direct copy, and a snapshot on a
// member never passes through the operator's link. Timings are never asserted.
import { describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { clusterLoad, clusterStart, sha256Hex, type Lab } from '../../lib/lab/index.ts'
import { labLink } from '../../lib/lab/shape.ts'
import { loadInventory, membersOf, type Member } from '../../lib/inventory/members.ts'
import { backup } from '../../lib/backup/backup.ts'
import { recover } from '../../lib/recover/recover.ts'
import { HostPool, connectAll } from '../../lib/task/hosts.ts'
import { Journal } from '../../lib/task/journal.ts'
import { hop } from '../../lib/transfer/relay.ts'
import { sh } from '../../lib/shell/sh.ts'
import { captureUi, gateway, onHost, useLab } from '../support/lab.ts'
import { hookedUi, onHostNow } from '../support/faults.ts'
import { runRecover } from '../support/cli.ts'
import { reportJson } from '../../lib/cli/render.ts'
import { kubeObject } from '../../lib/bench/kube.ts'

const PREFIX = '/etcd-rescue/load/'

async function expectAllKeys(members: Member[], manifest: Record<string, string>) {
  for (const m of members) {
    const kvs = await gateway(m.clientUrl).rangePrefix(PREFIX, { serializable: true })
    expect(Object.fromEntries(kvs.map((kv) => [kv.key.toString(), sha256Hex(kv.value)])), m.name).toEqual(manifest)
  }
}

/** A fresh backup (one more key first, so its hash differs from any earlier copy). */
async function freshBackup(members: Member[], tag: string) {
  await gateway(members[0].clientUrl).put(`/etcd-rescue/relay-test/${tag}`, tag)
  return backup({ members, outDir: mkdtempSync(join(tmpdir(), 'relay-backup-')), ui: captureUi() })
}

/** Bytes the operator's side of the lab bridge sent to the hosts (the shaped root qdisc). */
function operatorSent(lab: Lab): number {
  const out = execFileSync('tc', ['-s', 'qdisc', 'show', 'dev', lab.state.bridge!]).toString()
  return Number(/qdisc tbf[\s\S]*?Sent (\d+) bytes/.exec(out)?.[1] ?? NaN)
}

/**
 * A UI that hashes each host's copy of `snapshot` as the proof begins: every copy is in and
 * checked then, and the run removes the copies once the cluster is verified.
 */
function hashCopiesAtVerify(lab: Lab, snapshot: string) {
  const sha = sha256Hex(readFileSync(snapshot))
  const hashes: string[] = []
  const ui = hookedUi({
    phase: (title) => {
      if (!/^Verify/.test(title) || hashes.length) return
      for (const h of lab.state.hosts) hashes.push(onHostNow(lab, h.index, `sha256sum /var/lib/.etcd-rescue-etcd/snapshot-${sha.slice(0, 16)}.db | cut -c1-64`).trim())
    },
  })
  return { ui, hashes, sha }
}

describe('relay (3 hosts)', () => {
  const ctx = useLab({ hosts: 3 })
  let members: Member[]
  let manifest: Record<string, string>

  it('a relayed recovery ends verified, each host having checked the hash of its copy', async () => {
    const { lab } = ctx
    await clusterStart(lab)
    manifest = (await clusterLoad(lab, { keys: 200, seed: lab.name })).manifest
    members = membersOf(loadInventory(lab.paths.inventory)).members
    const b = await freshBackup(members, 'first')
    await labLink(lab, '100mbit')
    try {
      const { ui, hashes, sha } = hashCopiesAtVerify(lab, b.file)
      const r = await recover({ inventory: lab.paths.inventory, snapshot: b.file, relay: true, ui })
      expect(r.exitCode, `${r.message}\n${ui.text()}`).toBe(0)
      expect(ui.text()).toMatch(/\[etcd2\] copy ok in [\d.]+ s: .*sha256 verified on host; relayed from etcd1/)
      expect(ui.text()).toMatch(/\[etcd3\] copy ok in [\d.]+ s: .*sha256 verified on host; relayed from etcd1/)
      expect(ui.text()).not.toMatch(/not relayed/)
      expect(reportJson(r).phases.filter((p) => p.name === 'copy').map((p) => [p.host, (p.facts as { via: string }).via]).sort())
        .toEqual([['etcd1', 'direct'], ['etcd2', 'relayed'], ['etcd3', 'relayed']])
      // The slow leg went compressed (the lab hosts have zstd, as this machine does), over etcd1's session.
      expect(ui.text()).toMatch(/\[etcd1\] copy ok in [\d.]+ s: .*zstd checksum verified on host \(sha256 checked as sent\); zstd-compressed on the way: [\d.]+ [KM]iB sent/)
      // Every login shell counted, the hops' too: etcd1's session (its compressed upload came over it)
      // and the two hops' logins on it; etcd2's and etcd3's sessions and each hop's OpenSSH login (a lock takeover would add one).
      const takeovers = (n: string) => r.warnings.filter((w) => w.startsWith(`${n}: taking over the lock`)).length
      expect(r.remoteCommands).toEqual({ etcd1: 3 + takeovers('etcd1'), etcd2: 2 + takeovers('etcd2'), etcd3: 2 + takeovers('etcd3') })
      // The upload script on each host recorded the hash it checked, before the rename.
      for (const [i, m] of r.plan!.members.entries()) {
        const state = await onHost(lab, i + 1, sh`cat ${m.paths.state}`)
        expect(state, m.name).toMatch(new RegExp(`^verified ${r.plan!.snapshot.sha256} \\d+:\\d+:`, 'm'))
        // The copy was whole before the proof, and is gone after it.
        expect(hashes[i], m.name).toBe(sha)
        expect((await onHost(lab, i + 1, sh`[ -e ${m.paths.snapshot} ] && echo there || echo gone`)).trim(), m.name).toBe('gone')
      }
      await expectAllKeys(members, manifest)
    } finally {
      await labLink(lab, 'none')
    }
  })

  it('the hop refuses a host key other than the one verified from here', async () => {
    const { lab } = ctx
    const pool = new HostPool()
    await connectAll(members, pool, captureUi(), new Journal(), {}, members.length)
    try {
      const [source, target, other] = members.map((m) => pool.get(m.name))
      expect(target.hostKey).toBeDefined()
      // etcd2 as seen with etcd3's key on record: an impostor, as far as the hop knows.
      const impostor = Object.create(target, { hostKey: { value: other.hostKey } })
      await onHost(lab, 1, sh`head -c 100000 /dev/urandom > /tmp/relay-hostkey-test`)
      await expect(hop({ source, target: impostor, file: '/tmp/relay-hostkey-test', upload: sh`cat > /tmp/relay-hostkey-got`, connect: {}, size: 100000 }))
        .rejects.toThrow(/etcd2's host key as etcd1 sees it is not the one verified from here/)
      expect((await onHost(lab, 2, sh`[ -e /tmp/relay-hostkey-got ] && echo there || echo absent`)).trim()).toBe('absent')
      // The same hop with the verified key goes through (the refusal was the key, nothing else).
      await hop({ source, target, file: '/tmp/relay-hostkey-test', upload: sh`cat > /tmp/relay-hostkey-got`, connect: {}, size: 100000 })
      expect((await onHost(lab, 2, sh`wc -c < /tmp/relay-hostkey-got`)).trim()).toBe('100000')
    } finally {
      pool.closeAll()
    }
  })

  it('a hop whose target takes nothing, or takes it all and never answers, is ended with the reason (not waited for forever)', async () => {
    const { lab } = ctx
    const pool = new HostPool()
    await connectAll(members, pool, captureUi(), new Journal(), {}, members.length)
    try {
      const [source, target] = members.map((m) => pool.get(m.name))
      await onHost(lab, 1, sh`head -c 30000000 /dev/zero > /tmp/relay-stuck-test`)
      // Takes every byte, then hangs where its hash would run (a disk that hangs under it).
      await expect(hop({ source, target, file: '/tmp/relay-stuck-test', upload: sh`cat > /dev/null; exec sleep 601`, connect: {}, size: 30_000_000, limits: { answerMs: 2000 } }))
        .rejects.toThrow(/the hop was ended: etcd2 took the whole file from etcd1 but did not answer within 2 s \(its last writes or its hash of the file hang: a hung disk\?\)/)
      // Reads nothing at all (its disk hangs before the first write): dd on the source stops moving.
      await expect(hop({ source, target, file: '/tmp/relay-stuck-test', upload: sh`exec sleep 602`, connect: {}, size: 30_000_000, limits: { quietMs: 2000 } }))
        .rejects.toThrow(/the hop was ended: etcd2 took no data from etcd1 for 2 s \(a hung disk or a link gone silent\)/)
      // What the hop started on the source (dd reading the file, ssh to the target) was ended with it.
      expect((await onHost(lab, 1, "pgrep -f 'relay-stuck-tes[t]' | wc -l")).trim()).toBe('0')
    } finally {
      pool.closeAll()
      await onHost(lab, 2, "pkill -f '^sleep 60[12]$'; true")
      await onHost(lab, 1, 'rm -f /tmp/relay-stuck-test')
    }
  })

  it('a member the first member cannot reach gets a direct copy, with the reason', async () => {
    const { lab } = ctx
    const b = await freshBackup(members, 'unreachable')
    const netns = lab.state.hosts[0].netns!
    const h3 = lab.state.hosts[2].address
    // etcd1 cannot reach etcd3's sshd only: cutting all of etcd1 → etcd3 would cut their raft too,
    // and a cluster whose leader (etcd1, when it wins the election) cannot reach etcd3 never
    // has etcd3 healthy. A policy rule sends that one port to a table where h3 is unreachable.
    const ip = (...args: string[]) => execFileSync('ip', ['netns', 'exec', netns, 'ip', ...args])
    const rule = ['to', `${h3}/32`, 'ipproto', 'tcp', 'dport', String(members[2].ssh.port), 'table', '100']
    ip('route', 'add', 'unreachable', `${h3}/32`, 'table', '100')
    ip('rule', 'add', ...rule)
    try {
      const ui = captureUi()
      const r = await recover({ inventory: lab.paths.inventory, snapshot: b.file, relay: true, ui })
      expect(r.exitCode, `${r.message}\n${ui.text()}`).toBe(0)
      expect(ui.text()).toMatch(/etcd3: not relayed \(etcd1 cannot reach etcd3 over SSH[^\n]*\): copying it directly/)
      expect(ui.text()).toMatch(/\[etcd3\] copy ok in [\d.]+ s: .*sha256 verified on host; direct copy: not relayed/)
      expect(ui.text()).toMatch(/\[etcd2\] copy ok in [\d.]+ s: .*relayed from etcd1/)
      await expectAllKeys(members, manifest)
    } finally {
      ip('rule', 'del', ...rule)
      ip('route', 'del', 'unreachable', `${h3}/32`, 'table', '100')
    }
  })

  it('by itself, it relays on a slow link and copies directly on a fast one', async () => {
    const { lab } = ctx
    // A snapshot big enough to be measured (the probe starts after 4 MiB).
    manifest = { ...manifest, ...(await clusterLoad(lab, { keys: 1500, seed: `${lab.name}-auto` })).manifest }
    await labLink(lab, '100mbit')
    try {
      const slow = captureUi()
      const r = await recover({ inventory: lab.paths.inventory, snapshot: (await freshBackup(members, 'auto-slow')).file, ui: slow })
      expect(r.exitCode, `${r.message}\n${slow.text()}`).toBe(0)
      expect(slow.text()).toMatch(/relay \(auto\): the copies ran at .* in all, below 25 MB\/s: the others get it from etcd1/)
      expect(slow.text()).toMatch(/\[etcd3\] copy ok in [\d.]+ s: .*relayed from etcd1/)
      // etcd1: its session and the two hops' logins; etcd2 and etcd3: the session, the lock taken again
      // after its copy was cut, and the hop's login.
      const takeovers = (n: string) => r.warnings.filter((w) => w.startsWith(`${n}: taking over the lock`)).length
      expect(r.remoteCommands).toEqual({ etcd1: 3 + takeovers('etcd1'), etcd2: 3 + takeovers('etcd2'), etcd3: 3 + takeovers('etcd3') })
    } finally {
      await labLink(lab, 'none')
    }
    const fast = captureUi()
    const r = await recover({ inventory: lab.paths.inventory, snapshot: (await freshBackup(members, 'auto-fast')).file, ui: fast })
    expect(r.exitCode, `${r.message}\n${fast.text()}`).toBe(0)
    expect(fast.text()).not.toMatch(/relay \(auto\)|relayed from/)
    await expectAllKeys(members, manifest)
  })

  it('--snapshot HOST:PATH recovers from a member\'s file, which never crosses the operator\'s link', async () => {
    const { lab } = ctx
    const m2 = members[1]
    // Taken on etcd2, as operators do.
    await onHost(lab, 2, sh`mkdir -p /var/backups && ETCDCTL_API=3 ${`${lab.state.etcd.binDir}/etcdctl`} --endpoints ${m2.clientUrl} snapshot save /var/backups/etcd-snap.db >/dev/null`)
    const size = Number((await onHost(lab, 2, sh`stat -c %s /var/backups/etcd-snap.db`)).trim())
    expect(size).toBeGreaterThan(1 << 20)

    // An unknown host is bad input, named; nothing contacted.
    const unknown = runRecover(['--inventory', lab.paths.inventory, '--snapshot', 'etcd9:/var/backups/etcd-snap.db', '--check'])
    expect(unknown.status).toBe(2)
    expect(unknown.stderr).toMatch(/"etcd9" is not a member/)

    // The operator's link at 2 Mbit/s: through it, the file alone would take many seconds per host.
    await labLink(lab, '2mbit')
    try {
      const before = operatorSent(lab)
      const r = runRecover(['--inventory', lab.paths.inventory, '--snapshot', 'etcd2:/var/backups/etcd-snap.db', '--yes'])
      expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0)
      const sent = operatorSent(lab) - before
      expect(r.stdout).toMatch(/snapshot etcd2:\/var\/backups\/etcd-snap\.db: .*integrity trailer verified/)
      expect(r.stdout).toMatch(/\[etcd1\] copy ok in [\d.]+ s: .*relayed from etcd2/)
      expect(r.stdout).toMatch(/\[etcd3\] copy ok in [\d.]+ s: .*relayed from etcd2/)
      // Only the run's own SSH traffic went from here to the hosts: far less than one copy of the file.
      expect(sent, `operator sent ${sent} bytes; snapshot ${size}`).toBeLessThan(size / 4)
    } finally {
      await labLink(lab, 'none')
    }
    await expectAllKeys(members, manifest)
  })

  it('a direct copy of a snapshot that compresses goes zstd-compressed over each session (no login shell more), proven on each host by zstd\'s checksum of bytes hashed as they were sent; --no-compress sends it plain', async () => {
    const { lab } = ctx
    // Kubernetes-like objects (their encrypted Secrets left out) beside the random values of
    // the earlier tests: the snapshot shrinks by a third or so.
    const kube = Array.from({ length: 10_000 }, (_, i) => kubeObject(lab.name, i)).filter((o) => !o.key.startsWith('/registry/secrets/'))
    const g = gateway(members[0].clientUrl)
    for (let i = 0; i < kube.length; i += 50) await Promise.all(kube.slice(i, i + 50).map((o) => g.put(o.key, o.value)))
    const b = await freshBackup(members, 'compressed')
    const { ui, hashes, sha } = hashCopiesAtVerify(lab, b.file)
    const r = await recover({ inventory: lab.paths.inventory, snapshot: b.file, relay: false, ui })
    expect(r.exitCode, `${r.message}\n${ui.text()}`).toBe(0)
    for (const m of members) {
      const line = new RegExp(`\\[${m.name}\\] copy ok in [\\d.]+ s: .*zstd checksum verified on host \\(sha256 checked as sent\\); zstd-compressed on the way: [\\d.]+ [KM]iB sent \\(([\\d.]+)× smaller\\)`).exec(ui.text())
      expect(line, ui.text()).not.toBeNull()
      expect(Number(line![1])).toBeGreaterThan(1.3)
    }
    // The report says it to machines too: each copy direct, compressed, and the bytes sent.
    const copies = reportJson(r).phases.filter((p) => p.name === 'copy')
    expect(copies.map((p) => p.host).sort()).toEqual(members.map((m) => m.name))
    for (const p of copies) {
      expect(p.facts, p.host).toMatchObject({ via: 'direct', zstd: true })
      const sent = (p.facts as { sentBytes: number }).sentBytes
      expect(sent, p.host).toBeGreaterThan(0)
      expect(sent * 1.3, p.host).toBeLessThan(r.plan!.snapshot.size)
    }
    // One login shell per host: the session took the stream in frames.
    const takeovers = (n: string) => r.warnings.filter((w) => w.startsWith(`${n}: taking over the lock`)).length
    expect(r.remoteCommands).toEqual(Object.fromEntries(members.map((m) => [m.name, 1 + takeovers(m.name)])))
    // Each host's copy, decompressed there, was the snapshot (hashed as the proof began).
    expect(r.plan!.snapshot.sha256).toBe(sha)
    expect(hashes).toEqual(members.map(() => sha))
    await expectAllKeys(members, manifest)
    for (const m of members) {
      const got = await gateway(m.clientUrl).rangePrefix('/registry/', { serializable: true })
      expect(got.length, m.name).toBe(kube.length)
      expect(got.every((kv) => kv.value.equals(kube.find((o) => o.key === kv.key.toString())!.value)), m.name).toBe(true)
    }

    const reportFile = join(mkdtempSync(join(tmpdir(), 'relay-report-')), 'report.json')
    const plainSnapshot = (await freshBackup(members, 'not-compressed')).file
    const plain = runRecover(['--inventory', lab.paths.inventory, '--snapshot', plainSnapshot, '--no-relay', '--no-compress', '--yes', '--report', reportFile])
    expect(plain.status, `${plain.stdout}\n${plain.stderr}`).toBe(0)
    expect(plain.stdout).toMatch(/\[etcd1\] copy ok in [\d.]+ s: [\d.]+ MiB in/)
    expect(plain.stdout).not.toMatch(/zstd-compressed/)
    // In the report: every byte of the file sent, plain.
    const report = JSON.parse(readFileSync(reportFile, 'utf8')) as { snapshot: { size: number }; phases: Array<{ name: string; facts?: object }> }
    for (const p of report.phases.filter((x) => x.name === 'copy')) expect(p.facts).toEqual({ via: 'direct', sentBytes: report.snapshot.size, zstd: false })
  })

  it('a first member with busybox dd and head (its session cannot take files, its dd shows no progress) gets the slow leg compressed over an exec of its own, and relays all the same', async () => {
    const { lab } = ctx
    await onHost(lab, 1, `mkdir -p /root/bb && ln -sf /bin/busybox /root/bb/dd && ln -sf /bin/busybox /root/bb/head
cp -a /root/.bashrc /root/.bashrc.etcd-rescue-test 2>/dev/null || : > /root/.bashrc.etcd-rescue-test
echo 'PATH=/root/bb:$PATH' >> /root/.bashrc`)
    try {
      const ui = captureUi()
      const r = await recover({ inventory: lab.paths.inventory, snapshot: (await freshBackup(members, 'no-recv')).file, relay: true, ui })
      expect(r.exitCode, `${r.message}\n${ui.text()}`).toBe(0)
      expect(ui.text()).toMatch(/\[etcd1\] copy ok in [\d.]+ s: .*zstd checksum verified on host \(sha256 checked as sent\); zstd-compressed on the way\n/)
      expect(ui.text()).toMatch(/\[etcd3\] copy ok in [\d.]+ s: .*relayed from etcd1/)
      // etcd1: its session, the compressed upload's own exec, the two hops' logins.
      const takeovers = (n: string) => r.warnings.filter((w) => w.startsWith(`${n}: taking over the lock`)).length
      expect(r.remoteCommands.etcd1).toBe(4 + takeovers('etcd1'))
    } finally {
      await onHost(lab, 1, 'mv /root/.bashrc.etcd-rescue-test /root/.bashrc; rm -rf /root/bb')
    }
    await expectAllKeys(members, manifest)
  })
})

// Issue 8, faults 2, 3 and 6 on a lab of real sshd and etcd: a link cut during
// the copy (retried; if it stays down the run ends before anything is stopped),
// a link cut as a stopped member moves its restored data in (the others start;
// state per host, then the same command finishes), and a disk too small or filling up during the copy.
import { afterEach, describe, expect, it } from 'vitest'
import { PREFLIGHT, recover } from '../../lib/recover/recover.ts'
import { LOCK_LIMITS } from '../../lib/recover/lock.ts'
import { clusterKill } from '../../lib/lab/index.ts'
import { onHost, useLab } from '../support/lab.ts'
import type { Lab } from '../../lib/lab/index.ts'
import { bigCluster, expectBigValues, hookedUi, link, onHostNow, sshBack } from '../support/faults.ts'
import { captureUi, gateway } from '../support/lab.ts'
import { backup } from '../../lib/backup/backup.ts'
import { reportJson } from '../../lib/cli/render.ts'
import { kubeObject } from '../../lib/bench/kube.ts'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const pidsOf = (text: string) => text.trim()
const ETCD_PIDS = 'for p in $(pgrep -x etcd); do echo $p; done | sort'
const ASIDE_COUNT = 'ls -d /var/lib/etcd.etcd-rescue-old-* /var/lib/etcd/etcd-rescue-old-* 2>/dev/null | wc -l'

describe('faults: network and disk (etcd 3.4.23, 3 hosts)', () => {
  const ctx = useLab({ hosts: 3 })
  // One cluster of 32 values of 900 KiB and its snapshot, made once for the file's tests.
  let data: ReturnType<typeof bigCluster> | undefined
  const shared = () => (data ??= bigCluster(ctx.lab, 32))
  // Whatever a test did to a link, the next one starts with every link up.
  afterEach(() => {
    for (const i of [1, 2, 3]) link(ctx.lab, i, 'up')
  })

  it('a host cut off during the copy and staying down: retried, then the run ends before any member is stopped', async () => {
    const { lab } = ctx
    const { snapshot } = await shared()
    const pidsBefore = await Promise.all([1, 2, 3].map(async (i) => pidsOf(await onHost(lab, i, ETCD_PIDS))))
    // The running members write to their data (a lost peer means elections): compare what is there, not bytes.
    const DATA = `ls -A /var/lib/etcd /var/lib/etcd/member; ${ASIDE_COUNT}`
    const dataBefore = await Promise.all([1, 2, 3].map((i) => onHost(lab, i, DATA)))
    const cutter = cutMidCopy(lab)
    const ui = hookedUi({ update: cutter.update })
    const r = await recover({ compress: false, inventory: lab.paths.inventory, snapshot, ui, retries: 1, connectTimeoutMs: 3000 })
    link(lab, 2, 'up')
    await sshBack(lab, 2)
    expect(cutter.cut, ui.text()).toBe(true)
    expect(r.exitCode, `${r.message}\n${ui.text()}`).toBe(1)
    expect(ui.text()).toMatch(/warning: etcd2: copy retry 1 of 1 in 1 s/)
    expect(r.message).toMatch(/copy failed on etcd2 \(.*copy failed, 2 attempts/)
    expect(r.message).toMatch(/No member was stopped and no data was moved/)
    // etcd1 went on to restore beside its data dir (nothing of the member touched); no host passed the gate to stop.
    expect(r.message).toMatch(/etcd1: snapshot copied and restored into \/var\/lib\/\.etcd-rescue-etcd\/restore-\S+; etcd not stopped by this run, data untouched in \/var\/lib\/etcd/)
    expect(r.message).toMatch(/etcd2: etcd not stopped by this run, data untouched in \/var\/lib\/etcd; copy FAILED/)
    expect(r.journal.records.some((x) => ['stop', 'swap', 'start'].includes(x.phase))).toBe(false)
    // Nothing destroyed: the same etcd processes, the same data, no half copy kept.
    expect(await Promise.all([1, 2, 3].map(async (i) => pidsOf(await onHost(lab, i, ETCD_PIDS))))).toEqual(pidsBefore)
    expect(await Promise.all([1, 2, 3].map((i) => onHost(lab, i, DATA)))).toEqual(dataBefore)
    // The lost writer may still run on etcd2 (the host has not noticed), with its own part file; nothing is at the name restore reads.
    expect(await onHost(lab, 2, 'ls /var/lib/.etcd-rescue-etcd/snapshot-*.db 2>/dev/null | wc -l')).toMatch(/^0$/m)
  })

  it('a host cut off during the copy and back within the retries: copied again over a new connection, recovered', async () => {
    const { lab } = ctx
    const { snapshot, manifest } = await shared()
    // etcd1 and etcd3 may hold the copy already (the test before): etcd2's is the one cut here.
    await onHost(lab, 2, 'rm -f /var/lib/.etcd-rescue-etcd/snapshot-*.db')
    const cutter = cutMidCopy(lab)
    const ui = hookedUi({
      update: cutter.update,
      warn: (text) => {
        if (/etcd2: copy retry 1 of/.test(text)) link(lab, 2, 'up')
      },
    })
    const r = await recover({ compress: false, inventory: lab.paths.inventory, snapshot, ui })
    expect(cutter.cut, ui.text()).toBe(true)
    expect(r.exitCode, `${r.message}\n${ui.text()}`).toBe(0)
    expect(ui.text()).toMatch(/warning: etcd2: copy retry 1 of 2 in 1 s/)
    expect(ui.text()).toMatch(/\[etcd2\] copy ok in [\d.]+ s: \d+ MiB in .* sha256 verified on host/)
    await expectBigValues(lab, manifest)
  })

  it('a link lost as a member moves its restored data in: the others start, each host\'s state reported, and the same command finishes', async () => {
    const { lab } = ctx
    const { snapshot, manifest } = await shared()
    const asideBefore = await Promise.all([1, 2, 3].map((i) => onHost(lab, i, ASIDE_COUNT)))
    // etcd2 is stopped, its restored data ready beside it: its link goes as it starts the swap.
    const ui = hookedUi({ step: (host, step) => { if (host === 'etcd2' && step === 'swap') link(lab, 2, 'down') } })
    const first = await recover({ compress: false, inventory: lab.paths.inventory, snapshot, ui })
    link(lab, 2, 'up')
    await sshBack(lab, 2)
    expect(first.exitCode, `${first.message}\n${ui.text()}`).toBe(1)
    expect(first.message).toMatch(/swap failed on etcd2/)
    expect(first.message).toMatch(/Where each member stands:/)
    // Every old member was stopped (etcd2's too), so the others went on and started: a majority serves.
    for (const m of ['etcd1', 'etcd3']) expect(first.message).toMatch(new RegExp(`${m}: etcd started on restored data; old data set aside`))
    // The swap was a message on etcd2's session when its link went: whether it began there
    // cannot be known from here, so the state file it would have written first is named.
    expect(first.message).toMatch(/etcd2: etcd stopped; moving the restored data in did not finish, old data may be set aside \(see \/var\/lib\/\.etcd-rescue-etcd\/state\); swap FAILED/)
    expect(first.message).toMatch(/run the same command again/)
    expect(await onHost(lab, 2, 'pgrep -x etcd || echo none')).toMatch(/^none$/m)

    const ui2 = hookedUi({})
    const second = await recover({ compress: false, inventory: lab.paths.inventory, snapshot, ui: ui2 })
    expect(second.exitCode, `${second.message}\n${ui2.text()}`).toBe(0)
    expect(ui2.text()).toMatch(/\[etcd1\] stop ok in [\d.]+ s: already running restored data: left alone/)
    // Moved in now, or (had the message reached etcd2 once its link was back) by the first run.
    expect(ui2.text()).toMatch(/\[etcd2\] (swap ok in [\d.]+ s: restored data in \/var\/lib\/etcd|restore ok in [\d.]+ s: already restored by an earlier run)/)
    expect(ui2.text()).toMatch(/\[etcd2\] start ok/)
    await expectBigValues(lab, manifest)
    const asideAfter = await Promise.all([1, 2, 3].map((i) => onHost(lab, i, ASIDE_COUNT)))
    expect(asideAfter.map(Number)).toEqual(asideBefore.map((n) => Number(n) + 1))
  })

  it('a disk too small is refused at preflight with the space needed; a disk filling up during the copy leaves no truncated snapshot', async () => {
    const { lab } = ctx
    const { snapshot, manifest } = await shared()
    // etcd3's data dir's parent becomes a disk of its own, holding the member's data as before.
    await clusterKill(lab, { hosts: [3] })
    await onHost(lab, 3, `cp -a /var/lib/etcd /root/etcd-data && mount -t tmpfs -o size=600m smalldisk /var/lib && mv /root/etcd-data /var/lib/etcd`)
    const fill = (leaveMiB: number) => onHostNow(lab, 3, `rm -f /var/lib/filler; avail=$(df -Pk /var/lib | awk 'NR == 2 { print $4 }')
dd if=/dev/zero of=/var/lib/filler bs=1024 count=$((avail - ${leaveMiB} * 1024)) 2>/dev/null; df -Pk /var/lib | awk 'NR == 2 { print $4 }'`)

    fill(60)
    const refused = await recover({ compress: false, inventory: lab.paths.inventory, snapshot, ui: hookedUi({}) })
    expect(refused.exitCode, refused.message).toBe(3)
    expect(refused.message).toMatch(/etcd3: not enough free space next to the data dir: \d+ MiB free, \d+ MiB needed/)
    expect(refused.message).toMatch(/Nothing was changed on any host/)

    // Room enough at preflight; then, as the copy starts, the disk fills up to half a snapshot.
    onHostNow(lab, 3, 'rm -f /var/lib/filler')
    const ui = hookedUi({ phase: (title) => { if (/^Recover each member/.test(title)) fill(12) } })
    const full = await recover({ compress: false, inventory: lab.paths.inventory, snapshot, ui })
    expect(full.exitCode, `${full.message}\n${ui.text()}`).toBe(1)
    expect(full.message).toMatch(/copy failed on etcd3 \(etcd3: copy failed, not retried: no space left on device for the snapshot in \/var\/lib\/\.etcd-rescue-etcd \(the partial file was removed\)/)
    // Nothing but copies: the run says so (the others may have held the snapshot already, then it changed nothing).
    expect(full.message).toMatch(/No member was stopped and no data was moved|Nothing was changed/)
    expect(full.journal.records.some((x) => ['stop', 'swap', 'start'].includes(x.phase))).toBe(false)
    expect(await onHost(lab, 3, 'ls -A /var/lib/.etcd-rescue-etcd')).toBe('')

    // Space back: the same command copies to etcd3 afresh (nothing was kept to reuse) and recovers.
    await onHost(lab, 3, 'rm -f /var/lib/filler')
    const ui2 = hookedUi({})
    const again = await recover({ compress: false, inventory: lab.paths.inventory, snapshot, ui: ui2 })
    expect(again.exitCode, `${again.message}\n${ui2.text()}`).toBe(0)
    expect(ui2.text()).toMatch(/\[etcd1\] copy ok in [\d.]+ s: same snapshot already on this host/)
    expect(ui2.text()).toMatch(/\[etcd3\] copy ok in [\d.]+ s: \d+ MiB in .* sha256 verified on host/)
    await expectBigValues(lab, manifest)
  })

  it('a disk that hangs during the copy (its writer stops): cut from the shared read so the others go on, copied again on its own, its lock taken back, recovered', async () => {
    const { lab } = ctx
    const { snapshot, manifest } = await shared()
    await Promise.all([1, 2, 3].map((i) => onHost(lab, i, 'rm -f /var/lib/.etcd-rescue-etcd/snapshot-*.db')))
    // On etcd2 the first dd reading a file off the session stops before it reads a byte, as a
    // writer on a hung disk does (and stays so: only the takeover of the run's own lock ends it).
    // The session's check that dd takes its options (3 bytes, count=2) runs as usual.
    await onHost(lab, 2, `cat > /usr/local/bin/dd <<'EOF'
#!/bin/sh
case " $* " in *" count=2 "*) ;; *count_bytes*) if rm /tmp/etcd-rescue-test-hang 2>/dev/null; then kill -STOP $$; fi ;; esac
exec /bin/dd "$@"
EOF
chmod 755 /usr/local/bin/dd; touch /tmp/etcd-rescue-test-hang`)
    try {
      const ui = hookedUi({})
      const r = await recover({ compress: false, inventory: lab.paths.inventory, snapshot, ui })
      const text = ui.text()
      expect(r.exitCode, `${r.message}\n${text}`).toBe(0)
      expect(await onHost(lab, 2, 'ls /tmp/etcd-rescue-test-hang 2>/dev/null | wc -l')).toMatch(/^0$/m)
      expect(text).toMatch(/warning: etcd2: copy retry 1 of 2 in 1 s after: .*took no data for 10 s while the other hosts waited for it/)
      // The others' copies went on from the same read, neither cut nor retried.
      expect(text).toMatch(/\[etcd1\] copy ok in [\d.]+ s: \d+ MiB in .* sha256 verified on host\n/)
      expect(text).toMatch(/\[etcd3\] copy ok in [\d.]+ s: \d+ MiB in .* sha256 verified on host\n/)
      expect(text).not.toMatch(/etcd[13]: copy retry/)
      expect(text).toMatch(/\[etcd2\] copy ok in [\d.]+ s: .*direct copy, retried/)
      // Taking the run's lock back ended the cut session's loop, and with it the stopped writer it had started.
      expect(await onHost(lab, 2, "pgrep -f 'iflag=count_byte[s]' | wc -l")).toMatch(/^0$/m)
      await expectBigValues(lab, manifest)
    } finally {
      await onHost(lab, 2, "rm -f /usr/local/bin/dd /tmp/etcd-rescue-test-hang; pkill -KILL -f 'iflag=count_byte[s]'; true")
    }
  })

  it('a host whose preflight checks hang (a command in them stops): named after the limit, exit 3, nothing changed, nothing left running', async () => {
    const { lab } = ctx
    const { snapshot } = await shared()
    await Promise.all([1, 2, 3].map((i) => onHost(lab, i, 'rm -f /var/lib/.etcd-rescue-etcd/snapshot-*.db')))
    const DATA = `ls -A /var/lib/etcd /var/lib/etcd/member; ${ASIDE_COUNT}`
    const dataBefore = await Promise.all([1, 2, 3].map((i) => onHost(lab, i, DATA)))
    // On etcd2 the probe's first command, hostname, stops itself once (as a read of a hung disk would hang).
    await onHost(lab, 2, `cat > /usr/local/bin/hostname <<'EOF'
#!/bin/sh
if rm /tmp/etcd-rescue-test-hang 2>/dev/null; then echo $$ > /tmp/etcd-rescue-test-hung; kill -STOP $$; fi
exec /bin/hostname "$@"
EOF
chmod 755 /usr/local/bin/hostname; touch /tmp/etcd-rescue-test-hang`)
    const base = PREFLIGHT.baseMs
    PREFLIGHT.baseMs = 3000
    try {
      const ui = hookedUi({})
      const r = await recover({ compress: false, inventory: lab.paths.inventory, snapshot, ui })
      expect(r.exitCode, `${r.message}\n${ui.text()}`).toBe(3)
      expect(r.message).toMatch(/etcd2: its preflight checks gave no answer within \d+ s: SSH answered and the lock was taken, but the checks hang on this host/)
      expect(r.message).toMatch(/Nothing was changed/)
      // The stopped command went with the session that started it (the copy's take-back took the lock over).
      const hung = (await onHost(lab, 2, 'cat /tmp/etcd-rescue-test-hung')).trim()
      expect(await onHost(lab, 2, `[ -d /proc/${hung} ] && [ "$(cut -d' ' -f3 /proc/${hung}/stat)" != Z ] && echo alive || echo gone`)).toBe('gone\n')
      expect(await Promise.all([1, 2, 3].map((i) => onHost(lab, i, DATA)))).toEqual(dataBefore)
      expect(await onHost(lab, 2, 'ls /var/lib/.etcd-rescue-etcd/snapshot-*.db 2>/dev/null | wc -l')).toMatch(/^0$/m)
    } finally {
      PREFLIGHT.baseMs = base
      await onHost(lab, 2, 'rm -f /usr/local/bin/hostname /tmp/etcd-rescue-test-hang; [ -f /tmp/etcd-rescue-test-hung ] && kill -KILL "$(cat /tmp/etcd-rescue-test-hung)"; rm -f /tmp/etcd-rescue-test-hung; true')
    }
  })

  it('a host whose login shell hangs (~/.bashrc waits forever): named after the limit, exit 3, nothing changed', async () => {
    const { lab } = ctx
    const { snapshot } = await shared()
    const DATA = `ls -A /var/lib/etcd /var/lib/etcd/member; ${ASIDE_COUNT}`
    const dataBefore = await Promise.all([1, 2, 3].map((i) => onHost(lab, i, DATA)))
    // The next login on etcd2 waits in root's ~/.bashrc (as on a home directory whose NFS server is gone).
    await onHost(lab, 2, `cp -a /root/.bashrc /root/.bashrc.etcd-rescue-test 2>/dev/null || : > /root/.bashrc.etcd-rescue-test
echo 'if rm /tmp/etcd-rescue-test-hang 2>/dev/null; then sleep 600; fi' >> /root/.bashrc; touch /tmp/etcd-rescue-test-hang`)
    const start = LOCK_LIMITS.startWithinMs
    LOCK_LIMITS.startWithinMs = 3000
    try {
      const r = await recover({ compress: false, inventory: lab.paths.inventory, snapshot, ui: hookedUi({}) })
      expect(r.exitCode, r.message).toBe(3)
      expect(r.message).toMatch(/etcd2: SSH let this run in, but its command did not start within 3 s: the login shell hangs before running it/)
      expect(r.message).toMatch(/Nothing was changed/)
    } finally {
      LOCK_LIMITS.startWithinMs = start
      await onHost(lab, 2, 'rm -f /tmp/etcd-rescue-test-hang; mv /root/.bashrc.etcd-rescue-test /root/.bashrc; pkill -f "^sleep 600$"; true')
    }
    expect(await Promise.all([1, 2, 3].map((i) => onHost(lab, i, DATA)))).toEqual(dataBefore)
  })

  it('a host cut off during a compressed copy: the others finish from the same stream, its copy is retried once it is back, recovered', async () => {
    const { lab } = ctx
    const { members } = await shared()
    // Room on the lab's small disks: what the earlier tests set aside and copied goes.
    for (const i of [1, 2, 3]) await onHost(lab, i, 'rm -rf /var/lib/etcd.etcd-rescue-old-* /var/lib/.etcd-rescue-etcd/snapshot-* /var/lib/.etcd-rescue-etcd/restore-*')
    // Kubernetes-like objects: the snapshot goes compressed, several MiB of it, so the cut comes half way.
    const kube = Array.from({ length: 12_000 }, (_, i) => kubeObject(`${lab.name}-cut`, i)).filter((o) => !o.key.startsWith('/registry/secrets/'))
    const g = gateway(members[0].clientUrl)
    for (let i = 0; i < kube.length; i += 100) await Promise.all(kube.slice(i, i + 100).map((o) => g.put(o.key, o.value)))
    const b = await backup({ members, outDir: mkdtempSync(join(tmpdir(), 'faults-kube-')), ui: captureUi() })
    let cut = false
    const ui = hookedUi({
      update: (host, text) => {
        if (!cut && host === 'etcd2' && /sent zstd-compressed/.test(text)) {
          cut = true
          link(lab, 2, 'down')
        }
      },
      warn: (text) => {
        if (/etcd2: copy retry 1 of/.test(text)) link(lab, 2, 'up')
      },
    })
    const r = await recover({ inventory: lab.paths.inventory, snapshot: b.file, relay: false, ui })
    expect(cut, ui.text()).toBe(true)
    expect(r.exitCode, `${r.message}\n${ui.text()}`).toBe(0)
    for (const m of ['etcd1', 'etcd3']) expect(ui.text()).toMatch(new RegExp(`\\[${m}\\] copy ok in [\\d.]+ s: .*zstd checksum verified on host \\(sha256 checked as sent\\); zstd-compressed on the way`))
    expect(ui.text()).toMatch(/warning: etcd2: copy retry 1 of 2 in 1 s/)
    expect(reportJson(r).phases.find((p) => p.name === 'copy' && p.host === 'etcd2')?.facts).toMatchObject({ via: 'direct', zstd: true, retried: true })
    // The retry goes compressed too, as the first copy went.
    expect(ui.text()).toMatch(/\[etcd2\] copy ok in [\d.]+ s: .*zstd checksum verified on host \(sha256 checked as sent\); direct copy, retried; zstd-compressed on the way: [\d.]+ MiB sent \([\d.]+× smaller\)/)
    // Every member holds every object, from its own data alone.
    for (const h of lab.state.hosts) {
      const got = await gateway(`http://${h.address}:2379`).rangePrefix('/registry/', { serializable: true })
      expect(got.length, h.name).toBe(kube.length)
    }
  })
})

/** Cuts host 2's (etcd2's) link the first time its copy shows progress. */
function cutMidCopy(lab: Lab) {
  const state = {
    cut: false,
    update(host: string, text: string) {
      if (!state.cut && host === 'etcd2' && /[KM]iB of/.test(text)) {
        state.cut = true
        link(lab, 2, 'down')
      }
    },
  }
  return state
}

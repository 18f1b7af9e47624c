// Issue 8, faults 4, 5 and 8 and the secrets rule, on a lab of real sshd and
// etcd: the operator's process killed (SIGKILL) at every step boundary, Ctrl-C,
// one member restored from a different file, and passwords from the inventory
// in no artefact of a run. The CLI runs as a child process in its own process
// group, as a terminal runs it.
import { describe, expect, it } from 'vitest'
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createHash, randomBytes } from 'node:crypto'
import { sh } from '../../lib/shell/sh.ts'
import { recover } from '../../lib/recover/recover.ts'
import type { Lab } from '../../lib/lab/index.ts'
import { binShIsBash, onHost, useLab } from '../support/lab.ts'
import { bigCluster, expectBigValues, hookedUi, link, onHostNow, repo, runRecoverCli } from '../support/faults.ts'

const OTHER = join(repo, 'test/fixtures/etcd/snapshot-3.4.23-rev51.db')
const ASIDE_COUNT = 'ls -d /var/lib/etcd.etcd-rescue-old-* 2>/dev/null | wc -l'
const asideCounts = (lab: Lab) => Promise.all([1, 2, 3].map(async (i) => Number(await onHost(lab, i, ASIDE_COUNT))))

/**
 * A killed run's remote steps go on without it (no terminal, so no SIGHUP): wait
 * until none runs, as an operator would before running again (making a second
 * run wait is the per-member lock's job, not tested here). The brackets keep
 * pgrep from matching the shell that runs it.
 */
async function remoteStepsDone(lab: Lab) {
  for (const i of [1, 2, 3]) await onHost(lab, i, `while pgrep -f '[.]etcd-rescue-etcd|[s]topped=' >/dev/null; do sleep 0.2; done`)
}

describe('faults: interrupted runs, a swapped file, secrets (etcd 3.4.23, 3 hosts, /bin/sh is bash as on RHEL)', () => {
  // Plain-process members whose every remote step, interrupted or resumed, runs under
  // bash in POSIX mode; the other plain-process suites have dash.
  const ctx = useLab({ hosts: 3, binSh: 'bash' })

  it('runs its hosts with bash as /bin/sh', async () => {
    expect(await binShIsBash(ctx.lab)).toBe(true)
  })
  let data: ReturnType<typeof bigCluster> | undefined
  const shared = () => (data ??= bigCluster(ctx.lab, 16))
  const args = (snapshot: string, ...more: string[]) => ['--inventory', ctx.lab.paths.inventory, '--snapshot', snapshot, '--yes', '--plain', '--no-compress', ...more]

  it('Ctrl-C during the copy: running steps finish, no new step starts, each host\'s state printed, exit 130; the same command finishes', async () => {
    const { lab } = ctx
    const { snapshot, manifest } = await shared()
    // A fresh copy everywhere, so the run is copying when Ctrl-C comes.
    for (const i of [1, 2, 3]) await onHost(lab, i, 'rm -rf /var/lib/.etcd-rescue-etcd')
    const pidsBefore = await Promise.all([1, 2, 3].map((i) => onHost(lab, i, 'pgrep -x etcd')))
    let sent = false
    const first = await runRecoverCli(args(snapshot), (out, kill) => {
      if (!sent && /^\[etcd\d\] copy: [\d.]+ [KM]iB of/m.test(out)) {
        sent = true
        kill('SIGINT')
      }
    })
    expect(sent, first.out).toBe(true)
    expect(first.code, first.out).toBe(130)
    expect(first.out).toMatch(/Ctrl-C: no new step will start/)
    // The copies already running were let finish; no host went on to its next step.
    expect(first.out).toMatch(/^\[etcd\d\] copy ok/m)
    expect(first.out).toMatch(/^\[etcd\d\] held: not restore beside the data dir: the run was asked to stop$/m)
    expect(first.out).not.toMatch(/\] (restore|stop|swap|start) ok/)
    expect(first.out).toMatch(/interrupted: stopped by Ctrl-C after copy/)
    for (const m of ['etcd1', 'etcd2', 'etcd3']) {
      expect(first.out).toMatch(new RegExp(`${m}: snapshot copied; etcd not stopped by this run, data untouched in /var/lib/etcd`))
    }
    expect(await Promise.all([1, 2, 3].map((i) => onHost(lab, i, 'pgrep -x etcd')))).toEqual(pidsBefore)

    const again = await runRecoverCli(args(snapshot))
    expect(again.code, again.out).toBe(0)
    await expectBigValues(lab, manifest)
  })

  it('asked to stop as the first old member stops: that stop finishes, no other step starts, each host\'s state told; the same command finishes', async () => {
    const { lab } = ctx
    const { snapshot, manifest } = await shared()
    const stop = new AbortController()
    const ui = hookedUi({ step: (_host, step) => { if (step === 'stop') stop.abort() } })
    const first = await recover({ compress: false, inventory: lab.paths.inventory, snapshot, ui, signal: stop.signal })
    expect(first.exitCode, `${first.message}\n${ui.text()}`).toBe(130)
    expect(first.result).toBe('interrupted')
    const stopped = first.journal.records.filter((r) => r.phase === 'stop').map((r) => r.host)
    expect(stopped.length, ui.text()).toBe(1)
    expect(first.journal.records.some((r) => ['swap', 'start'].includes(r.phase))).toBe(false)
    for (const m of ['etcd1', 'etcd2', 'etcd3']) {
      expect(first.message).toMatch(new RegExp(m === stopped[0]
        ? `${m}: etcd stopped; old data NOT set aside, still in /var/lib/etcd; restored data not moved in`
        : `${m}: snapshot copied and restored into /var/lib/\\.etcd-rescue-etcd/restore-\\S+; etcd not stopped by this run, data untouched in /var/lib/etcd`))
    }
    for (const i of [1, 2, 3]) expect(await onHost(lab, i, 'pgrep -x etcd || echo none')).toMatch(`etcd${i}` === stopped[0] ? /^none$/m : /^\d+$/m)

    const again = await recover({ compress: false, inventory: lab.paths.inventory, snapshot, ui: hookedUi({}) })
    expect(again.exitCode, again.message).toBe(0)
    await expectBigValues(lab, manifest)
  })

  it('a second Ctrl-C exits at once, without waiting for the running steps', async () => {
    const { snapshot } = await shared()
    // etcd2 does not answer: connecting to it waits for the timeout, a step that is still running.
    link(ctx.lab, 2, 'down')
    let sent = 0
    try {
      const r = await runRecoverCli(args(snapshot, '--connect-timeout', '120'), (out, kill) => {
        if (sent === 0 && /^== Connect over SSH/m.test(out)) {
          sent = 1
          kill('SIGINT')
        } else if (sent === 1 && /Ctrl-C again to exit at once/.test(out)) {
          sent = 2
          kill('SIGINT')
        }
      })
      expect(sent, r.out).toBe(2)
      expect(r.code, r.out).toBe(130)
      // Exited from the signal handler: the connect to etcd2 was not waited for.
      expect(r.out).not.toMatch(/no SSH answer|cannot connect|interrupted:/)
    } finally {
      link(ctx.lab, 2, 'up')
    }
  })

  it('the operator\'s process killed mid-copy and at every step boundary, then the same command: verified, old data set aside exactly once, no partial snapshot restored', async () => {
    const { lab } = ctx
    const { snapshot, manifest } = await shared()
    const sha = createHash('sha256').update(readFileSync(snapshot)).digest('hex')
    // A fresh copy everywhere, so the first run is killed while copying.
    for (const i of [1, 2, 3]) await onHost(lab, i, 'rm -rf /var/lib/.etcd-rescue-etcd')
    const before = await asideCounts(lab)
    const boundaries = [/^\[etcd\d\] copy: [\d.]+ [KM]iB of/m, /^\[etcd\d\] restore ok/m, /^-- every member holds its restored data/m, /^\[etcd\d\] swap ok/m, /^-- every old member is stopped/m, /^== Wait for a healthy quorum/m]
    for (const boundary of boundaries) {
      let killed = false
      const r = await runRecoverCli(args(snapshot), (out, kill) => {
        if (!killed && boundary.test(out)) {
          killed = true
          kill('SIGKILL')
        }
      })
      expect(r.signal, `${boundary}: the run ended by itself\n${r.out}`).toBe('SIGKILL')
      await remoteStepsDone(lab)
      // Whatever is at the name restore reads is the whole snapshot; a part file is never that name.
      for (const i of [1, 2, 3]) {
        const there = await onHost(lab, i, 'for f in /var/lib/.etcd-rescue-etcd/snapshot-*.db; do [ -f "$f" ] && sha256sum "$f"; done; true')
        for (const line of there.trim().split('\n').filter(Boolean)) expect(line.split(' ')[0], `host ${i} after ${boundary}`).toBe(sha)
      }
    }
    const last = await runRecoverCli(args(snapshot))
    expect(last.code, last.out).toBe(0)
    expect(last.out).toMatch(/recovered and verified/)
    await expectBigValues(lab, manifest)
    expect(await asideCounts(lab)).toEqual(before.map((n) => n + 1))
  })

  it('the copied file swapped on one host after the copy: refused right before that member\'s restore, and the same command copies it anew', async () => {
    const { lab } = ctx
    const { snapshot, manifest } = await shared()
    const sha = createHash('sha256').update(readFileSync(snapshot)).digest('hex')
    // Another cluster's snapshot (the unit tests' fixture), put on etcd2 beforehand.
    onHostNow(lab, 2, 'cat > /root/other.db', readFileSync(OTHER))
    const target = `/var/lib/.etcd-rescue-etcd/snapshot-${sha.slice(0, 16)}.db`
    let swapped = false
    const ui = hookedUi({
      step: (host, step) => {
        if (host === 'etcd2' && step === 'restore' && !swapped) {
          onHostNow(lab, 2, `cp /root/other.db ${target}`)
          swapped = true
        }
      },
    })
    const first = await recover({ compress: false, inventory: lab.paths.inventory, snapshot, ui })
    expect(swapped).toBe(true)
    expect(first.exitCode, `${first.message}\n${ui.text()}`).toBe(1)
    expect(first.message).toMatch(/restore failed on etcd2/)
    expect(first.message).toMatch(/is not the snapshot verified on this host .*it changed since the copy/)
    // The restore comes before any stop: no member was stopped.
    expect(first.message).toMatch(/No member was stopped and no data was moved/)
    const ui2 = hookedUi({})
    const again = await recover({ compress: false, inventory: lab.paths.inventory, snapshot, ui: ui2 })
    expect(again.exitCode, `${again.message}\n${ui2.text()}`).toBe(0)
    expect(ui2.text()).toMatch(/\[etcd2\] copy ok in [\d.]+ s: \d+ MiB in .* sha256 verified on host/)
    await expectBigValues(lab, manifest)
  })

  it('a restore that hangs on one host: given up there after its limit (--step-timeout), named with how to go on, no member stopped; the same command finishes', async () => {
    const { lab } = ctx
    const { snapshot, manifest } = await shared()
    const pidsBefore = await Promise.all([1, 2, 3].map((i) => onHost(lab, i, 'pgrep -x etcd')))
    // The restore's log a FIFO no one reads: its first write blocks, as on a hung disk (but a signal ends it).
    const log = '/var/lib/.etcd-rescue-etcd/restore.log'
    let hung = false
    const ui = hookedUi({
      step: (host, step) => {
        if (host === 'etcd2' && step === 'restore' && !hung) {
          onHostNow(lab, 2, `rm -f ${log} && mkfifo ${log}`)
          hung = true
        }
      },
    })
    const t0 = Date.now()
    const first = await recover({ compress: false, inventory: lab.paths.inventory, snapshot, ui, stepTimeoutMs: 3000 })
    expect(hung).toBe(true)
    expect(first.exitCode, `${first.message}\n${ui.text()}`).toBe(1)
    // The restore's limit: the 3 s base, plus 1 s per 5 MB of snapshot.
    const limitS = 3 + Math.ceil(statSync(snapshot).size / 5e6)
    expect(first.message).toMatch(new RegExp(`restore failed on etcd2 \\(.*restore did not finish within ${limitS} s on this host and was given up; its process group there is sent TERM, then KILL`))
    expect(first.message).toMatch(/hint: Something on the host hangs .* --step-timeout/)
    expect(first.message).toMatch(/No member was stopped and no data was moved/)
    // Not held for ever: ended after its limit (plus the TERM-then-KILL of its group).
    expect(Date.now() - t0).toBeLessThan(60_000)
    expect(await Promise.all([1, 2, 3].map((i) => onHost(lab, i, 'pgrep -x etcd')))).toEqual(pidsBefore)
    // The step's own shell (blocked opening the FIFO) was ended with its group: none is left on the host.
    const step = `pgrep -f '[e]tcd-rescue-session[.][^ ]*/[0-9]+[.]s'`
    expect((await onHost(lab, 2, `i=0; while ${step} >/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done; ${step} || echo none`)).trim()).toBe('none')

    onHostNow(lab, 2, `rm -f ${log}`)
    const again = await recover({ compress: false, inventory: lab.paths.inventory, snapshot, ui: hookedUi({}) })
    expect(again.exitCode, again.message).toBe(0)
    await expectBigValues(lab, manifest)
  })

  it('one member\'s data restored from a different file behind the tool\'s back, then the same command: exit 4, hashkv named', async () => {
    const { lab } = ctx
    const { snapshot } = await shared()
    const first = await recover({ compress: false, inventory: lab.paths.inventory, snapshot, ui: hookedUi({}), stopAfter: 'swap' })
    expect(first.exitCode, first.message).toBe(1)
    // etcd2's restored data replaced by a restore of another cluster's snapshot, with this run's very identity.
    const plan = first.plan!
    const m = plan.members[1]
    onHostNow(lab, 2, 'cat > /root/other.db', readFileSync(OTHER))
    await onHost(lab, 2, sh`rm -rf /root/other-restore
ETCDCTL_API=3 etcdctl snapshot restore /root/other.db --name ${m.name} --initial-cluster ${plan.initialCluster} --initial-cluster-token ${plan.token} --initial-advertise-peer-urls ${m.peerUrl} --data-dir /root/other-restore >/dev/null 2>&1
rm -rf /var/lib/etcd/member && mv /root/other-restore/member /var/lib/etcd/member`)
    // The survivor guard sees it first: etcd2 holds a higher revision than the snapshot.
    const guarded = await recover({ compress: false, inventory: lab.paths.inventory, snapshot, ui: hookedUi({}) })
    expect(guarded.exitCode, guarded.message).toBe(3)
    expect(guarded.message).toMatch(/etcd2 \(stopped\) holds revision \d+, the snapshot \d+/)
    // Told to go on anyway, verification is the last line: the data differs.
    const ui = hookedUi({})
    const r = await recover({ compress: false, inventory: lab.paths.inventory, snapshot, ui, timeoutMs: 60_000, acceptDataLoss: true })
    expect(r.exitCode, `${r.message}\n${ui.text()}`).toBe(4)
    expect(ui.text()).toMatch(/\[etcd2\] restore ok in [\d.]+ s: already restored by an earlier run/)
    expect(r.message).toMatch(/the cluster is up but verification failed/)
    const hashes = /✖ hashkv: differs at revision \d+: etcd1=(.*), etcd2=(.*), etcd3=(.*)/.exec(r.message)
    expect(hashes, r.message).not.toBe(null)
    expect(hashes![1]).toBe(hashes![3])
    expect(hashes![2]).not.toBe(hashes![1])
  })

  // Last: its drill writes to the cluster, so an older snapshot would roll data back (refused since survivors are guarded).
  it('passwords from the inventory appear in no output, report or drill report', async () => {
    const { lab } = ctx
    await shared()
    const secrets = ['ssh', 'become', 'sudo', 'prompt'].map((k) => `S3cret-${k}-${randomBytes(6).toString('hex')}`)
    const dir = mkdtempSync(join(tmpdir(), 'secrets-'))
    mkdirSync(join(dir, 'group_vars'))
    writeFileSync(join(dir, 'hosts.ini'), readFileSync(lab.paths.inventory, 'utf8'))
    writeFileSync(join(dir, 'group_vars', 'etcd.yml'), [
      `ansible_password: ${secrets[0]}`,
      `ansible_ssh_pass: ${secrets[0]}`,
      'ansible_become: true',
      `ansible_become_password: ${secrets[1]}`,
      `ansible_sudo_pass: ${secrets[2]}`,
      'etcd_drill_allowed: true',
      '',
    ].join('\n'))
    const inv = join(dir, 'hosts.ini')
    const backup = join(dir, 'backup.db')
    writeFileSync(backup, readFileSync((await shared()).snapshot))
    const out: string[] = []
    const cli = (script: string, a: string[], input?: string) => runRecoverCli(a, undefined, script, input).then((r) => { out.push(r.out); return r })
    // The test before left an interrupted run (a fresh token restores anew) and etcd2 on another file's data at a
    // higher revision (restoring over it is a choice, --accept-data-loss, that the report records).
    const fresh = ['--token', `secrets-${randomBytes(3).toString('hex')}`, '--accept-data-loss']
    const check = await cli('recover.mjs', ['--inventory', inv, '--snapshot', backup, ...fresh, '--check', '-v', '--report', join(dir, 'check.json')])
    expect(check.code, check.out).toBe(0)
    // The secrets are read: the run warns about them, by name only.
    expect(check.out).toMatch(/a become password is set, but etcd-rescue runs sudo non-interactively/)
    expect(check.out).toMatch(/an SSH password is set/)
    // -K: the become password typed at the prompt (here the first line of stdin) is a secret too.
    const run = await cli('recover.mjs', ['--inventory', inv, '--snapshot', backup, ...fresh, '--yes', '--plain', '-v', '-K', '--report', join(dir, 'recover.json')], `${secrets[3]}\n`)
    expect(run.code, run.out).toBe(0)
    expect(run.out).toMatch(/sudo -n|sh -c|\$ /)
    const failing = await cli('recover.mjs', ['--inventory', inv, '--snapshot', backup, '--yes', '--plain', '-v', '--bump-revision', '5', '--report', join(dir, 'refused.json')])
    expect(failing.code, failing.out).toBe(3)
    const drill = await cli('drill.mjs', ['--inventory', inv, '--yes', '--plain', '--keys', '40', '--scenario', 'quorum-loss', '--report', join(dir, 'drills', 'drill.json')])
    expect(drill.code, drill.out).toBe(0)

    const files = walk(dir).filter((f) => !f.includes('/backups/') && !f.endsWith('.db') && !f.includes('group_vars'))
    expect(files.map((f) => f.slice(dir.length + 1)).sort()).toEqual(expect.arrayContaining(['check.json', 'recover.json', 'refused.json', 'drills/drill.json', 'drills/drill.html', 'drills/drill-history.jsonl']))
    for (const text of [...out, ...files.map((f) => readFileSync(f, 'utf8'))]) {
      for (const s of secrets) expect(text.includes(s), `a secret in: ${text.slice(0, 200)}`).toBe(false)
    }
  })
})

function walk(d: string): string[] {
  return readdirSync(d).flatMap((n) => (statSync(join(d, n)).isDirectory() ? walk(join(d, n)) : [join(d, n)]))
}

// The restore step's arming of the hold, run for real under the shells that are
// /bin/sh on the hosts etcd-rescue meets: dash (Debian, Ubuntu), bash as sh
// (RHEL and its kin, Fedora, Amazon Linux) and busybox sh (Alpine-based tooling).
// systemctl and etcdutl are stand-ins on PATH that do what the script needs of
// them; the hold's paths live under a temporary root, never the machine's /run.
import { afterAll, describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { restoreScript } from '../../lib/plan/scripts.ts'
import { memberPaths } from '../../lib/plan/paths.ts'
import { unitArmScript, unitHold, unitStopScript } from '../../lib/plan/systemd.ts'
import { SHELLS, available } from '../support/shells.ts'

const base = mkdtempSync(join(tmpdir(), 'hold-run-'))
afterAll(() => rmSync(base, { recursive: true, force: true }))


let n = 0
// The unit as `systemctl show` prints it (systemd 252's order, runtime fields in ExecStart),
// and as preflight's unit_loaded_of gives it back.
const UNIT_SHOW = `ExecStart={ path=/usr/local/bin/etcd ; argv[]=/usr/local/bin/etcd ; ignore_errors=no ; start_time=[Thu 2026-11-26 23:21:08 UTC] ; stop_time=[n/a] ; pid=129 ; code=(null) ; status=0/0 }
Environment=
EnvironmentFiles=/etc/etcd.env (ignore_errors=no)
User=etcd
RefuseManualStart=no
FragmentPath=/etc/systemd/system/etcd.service
`
const UNIT_LOADED = ['DropInPaths=', 'Environment=', 'EnvironmentFiles=/etc/etcd.env (ignore_errors=no)', 'ExecStart={ path=/usr/local/bin/etcd ; argv[]=/usr/local/bin/etcd ; ignore_errors=no }', 'FragmentPath=/etc/systemd/system/etcd.service', 'RefuseManualStart=no', 'User=etcd']

/**
 * A member's dirs, a snapshot, and stand-in tools: `reload` says whether daemon-reload works,
 * `restore` whether etcdutl does; `onDisk` is the unit's show text that the next reload loads
 * (systemd has UNIT_SHOW loaded until then), `loaded` what preflight read.
 */
function host(o: { reload: boolean; restore: boolean; onDisk?: string; loaded?: string[]; flagged?: boolean; showFailsAfterReload?: boolean }) {
  const dir = join(base, `h${n++}`)
  const tools = join(dir, 'bin')
  mkdirSync(tools, { recursive: true })
  const root = join(dir, 'root')
  const loaded = join(dir, 'loaded')
  // systemd's view: daemon-reload loads every drop-in and the unit as they are on disk; show
  // prints what it loaded.
  writeFileSync(join(dir, 'unit.loaded'), UNIT_SHOW)
  writeFileSync(join(dir, 'unit.disk'), o.onDisk ?? UNIT_SHOW)
  if (o.flagged) writeFileSync(join(dir, 'flagged'), '')
  writeFileSync(join(tools, 'systemctl'), `#!/bin/sh
echo "$*" >> ${dir}/calls
case "$1" in
  daemon-reload) ${o.reload ? `ls ${root}/etc/systemd/system/*.d/*.conf ${root}/run/systemd/system/*.d/*.conf 2>/dev/null | tr '\\n' ' ' > ${loaded}; cp ${dir}/unit.disk ${dir}/unit.loaded; ${o.showFailsAfterReload ? `touch ${dir}/show.fails; ` : ''}exit 0` : 'echo "Failed to reload daemon: Access denied" >&2; exit 1'} ;;
  # Only the properties asked for (-p NAME ...), as systemctl prints them.
  show) want=; prev=; for a; do [ "$prev" = -p ] && want="$want $a"; prev=$a; done
    # After a reload that broke it: the unit's own properties cannot be read (DropInPaths can).
    [ -e ${dir}/show.fails ] && case " $want " in *" ExecStart "*) exit 1 ;; esac
    { cat ${dir}/unit.loaded; echo "DropInPaths=$(cat ${loaded} 2>/dev/null)"; [ -e ${dir}/flagged ] && echo NeedDaemonReload=yes || echo NeedDaemonReload=no; } |
      while IFS= read -r l; do for w in $want; do case $l in "$w"=*) printf '%s\\n' "$l" ;; esac; done; done ;;
  is-active) if grep -q '^stop' ${dir}/calls; then echo inactive; else echo active; fi ;;
esac
`)
  writeFileSync(join(tools, 'etcdutl'), `#!/bin/sh
for a; do case "$prev" in --data-dir) d=$a ;; esac; prev=$a; done
${o.restore ? 'mkdir -p "$d/member/snap" "$d/member/wal"' : 'echo "Error: snapshot file has wrong hash" >&2; exit 1'}
`)
  for (const t of ['systemctl', 'etcdutl']) chmodSync(join(tools, t), 0o755)
  const snapshot = Buffer.from('not a real snapshot')
  const sha = createHash('sha256').update(snapshot).digest('hex')
  const paths = memberPaths(join(dir, 'var', 'etcd'), sha, 'tok', '20260101T000000Z', false)
  mkdirSync(paths.work, { recursive: true })
  writeFileSync(paths.snapshot, snapshot)
  const script = restoreScript({
    paths, ports: [2379], sha256: sha, mountpoint: false, arm: unitArmScript('etcd', root, o.loaded ?? UNIT_LOADED),
    restore: { tool: 'etcdutl', bin: join(tools, 'etcdutl'), name: 'e1', initialCluster: 'e1=https://a:2380', token: 'tok', peerUrl: 'https://a:2380', skipHashCheck: true },
  })
  const calls = () => readFileSync(join(dir, 'calls'), 'utf8').trim().split('\n')
  return { script, tools, paths, root, calls, hold: unitHold('etcd', root) }
}

describe.each(SHELLS)('the restore step arming the hold, under %s', (_name, shell) => {
  /** The host's restore script, or another script, with the host's stand-in tools. */
  const run = (h: ReturnType<typeof host>, script = h.script) => spawnSync(shell[0], [...shell.slice(1), '-c', script.text], { encoding: 'utf8', env: { ...process.env, PATH: `${h.tools}:${process.env.PATH}` } })

  it.skipIf(!available(shell))('restores and arms: exit 0, the drop-in loaded', () => {
    const h = host({ reload: true, restore: true })
    const r = run(h)
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toContain('hold.armed=1\n')
    expect(r.stdout).toContain(`restore=ready ${h.paths.restoreTmp}\n`)
    expect(existsSync(h.hold.dropIn)).toBe(true)
    expect(existsSync(h.hold.file)).toBe(false)
  })

  it.skipIf(!available(shell))('restores when arming fails: exit 0, saying why, for the stop step to try again', () => {
    const h = host({ reload: false, restore: true })
    const r = run(h)
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toContain('hold.arm-failed=systemctl daemon-reload failed: etcd is not held for the recovery\n')
    expect(r.stdout).toContain('restore=ready')
  })

  it.skipIf(!available(shell))('a restore that fails exits 1 with etcdutl\'s words, whatever the arming did', () => {
    for (const reload of [true, false]) {
      const h = host({ reload, restore: false })
      const r = run(h)
      expect(r.status, `${reload}: ${r.stdout}`).toBe(1)
      expect(r.stderr).toContain('snapshot file has wrong hash')
      expect(existsSync(h.paths.restoreTmp)).toBe(false)
    }
  })

  it.skipIf(!available(shell))('removes the restore dirs earlier runs left (other tokens), and nothing else of the work dir', () => {
    const h = host({ reload: true, restore: true })
    const work = dirname(h.paths.restoreTmp)
    const left = [join(work, 'restore-etcd-rescue-older-aaaaaa'), join(h.paths.dataDir, '.etcd-rescue-restore-etcd-rescue-older-bbbbbb')]
    for (const d of left) mkdirSync(join(d, 'member'), { recursive: true })
    // What must stay: the member's data, old data set aside (beside it, and inside it as on a
    // mount point), the work dir's snapshot and journal, a file that only looks like ours.
    const kept = [join(h.paths.dataDir, 'member', 'snap', 'db'), join(`${h.paths.dataDir}.etcd-rescue-old-20250101T000000Z`, 'member', 'db'), join(h.paths.dataDir, 'etcd-rescue-old-20250101T000000Z', 'member', 'db'), join(work, 'restore-notes.txt')]
    for (const f of kept) {
      mkdirSync(dirname(f), { recursive: true })
      writeFileSync(f, 'keep')
    }
    writeFileSync(h.paths.state, 'aside /var/lib/etcd.etcd-rescue-old-20250101T000000Z\n')
    const r = run(h)
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toContain(`stale.removed=${left[0]}\n`)
    expect(r.stdout).toContain(`stale.removed=${left[1]}\n`)
    for (const d of left) expect(existsSync(d), d).toBe(false)
    for (const f of [...kept, h.paths.snapshot, h.paths.state]) expect(existsSync(f), f).toBe(true)
    expect(existsSync(join(h.paths.restoreTmp, 'member'))).toBe(true)
  })

  it.skipIf(!available(shell))('fails the restore (exit 1) when the reload loads a unit preflight did not check, saying what changed', () => {
    // A drop-in dir made after systemd loaded the unit, which older systemd does not flag
    // (NeedDaemonReload=no): the hold's reload loads its ExecStart.
    const h = host({ reload: true, restore: true, onDisk: UNIT_SHOW.replace('argv[]=/usr/local/bin/etcd ;', 'argv[]=/usr/local/bin/etcd --force-new-cluster ;') })
    const byHand = join(h.root, 'etc/systemd/system/etcd.service.d/10-by-hand.conf')
    mkdirSync(dirname(byHand), { recursive: true })
    writeFileSync(byHand, '[Service]\nExecStart=\nExecStart=/usr/local/bin/etcd --force-new-cluster\n')
    const r = run(h)
    expect(r.status, r.stdout).toBe(1)
    // What changed, then the reason on the last line (the step's summary).
    expect(r.stderr).toBe([
      '  - DropInPaths=',
      `  + DropInPaths=${byHand}`,
      '  - ExecStart={ path=/usr/local/bin/etcd ; argv[]=/usr/local/bin/etcd ; ignore_errors=no }',
      '  + ExecStart={ path=/usr/local/bin/etcd ; argv[]=/usr/local/bin/etcd --force-new-cluster ; ignore_errors=no }',
      'etcd has changed since preflight read it (DropInPaths ExecStart differ as loaded now; systemd need not flag a new unit file or drop-in dir, which a reload loads): this member was not stopped; run again, and preflight checks the unit as it is now',
      '',
    ].join('\n'))
    expect(r.stdout).not.toContain('restore=ready')
    expect(r.stdout).not.toContain('hold.arm')
    // The drop-in stays loaded, inert: no hold file, nothing stopped; the restored data is not left.
    expect(existsSync(h.hold.dropIn)).toBe(true)
    expect(existsSync(h.hold.file)).toBe(false)
    expect(existsSync(h.paths.restoreTmp)).toBe(false)
  })

  it.skipIf(!available(shell))('fails the restore without reloading when a file of the unit changed since preflight (NeedDaemonReload=yes now)', () => {
    const h = host({ reload: true, restore: true, flagged: true })
    const r = run(h)
    expect(r.status, r.stdout).toBe(1)
    expect(r.stderr).toMatch(/^etcd has changed since preflight read it \(NeedDaemonReload=yes: a file of it changed on disk and is not loaded yet; .*\): this member was not stopped; run again, and preflight checks the unit as it is now\n$/)
    expect(h.calls()).not.toContain('daemon-reload')
    expect(existsSync(h.hold.dropIn)).toBe(false)
    expect(existsSync(h.paths.restoreTmp)).toBe(false)
  })

  it.skipIf(!available(shell))('fails the restore when systemctl cannot show the unit after the reload: not taken for a change', () => {
    const h = host({ reload: true, restore: true, showFailsAfterReload: true })
    const r = run(h)
    expect(r.status, r.stdout).toBe(1)
    expect(r.stderr).toBe('systemctl show printed nothing for etcd after the reload: whether it is still the unit preflight checked is unknown; this member was not stopped\n')
  })

  it.skipIf(!available(shell))('the stop step neither holds nor stops a unit that is not the one preflight checked (exit 3)', () => {
    const h = host({ reload: true, restore: true, onDisk: UNIT_SHOW.replace('User=etcd', 'User=root') })
    const r = run(h, unitStopScript('etcd', h.root, UNIT_LOADED))
    expect(r.status, r.stdout).toBe(3)
    expect(r.stderr).toMatch(/^ {2}- User=etcd\n {2}\+ User=root\netcd has changed since preflight read it \(User differ as loaded now; /)
    expect(existsSync(h.hold.file)).toBe(false)
    expect(h.calls().filter((c) => /^(stop|kill)/.test(c))).toEqual([])
    // The same unit as preflight read: held and stopped.
    const same = host({ reload: true, restore: true })
    const ok = run(same, unitStopScript('etcd', same.root, UNIT_LOADED))
    expect(ok.status, ok.stderr).toBe(0)
    expect(existsSync(same.hold.file)).toBe(true)
    expect(same.calls()).toContain('stop --no-block etcd')
  })
})

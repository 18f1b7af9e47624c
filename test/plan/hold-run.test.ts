// The restore step's arming of the hold, run for real under the shells that are
// /bin/sh on the hosts etcd-rescue meets: dash (Debian, Ubuntu), bash as sh
// (RHEL and its kin, Fedora, Amazon Linux) and busybox sh (Alpine-based tooling).
// systemctl and etcdutl are stand-ins on PATH that do what the script needs of
// them; the hold's paths live under a temporary root, never the machine's /run.
import { afterAll, describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { restoreScript } from '../../lib/plan/scripts.ts'
import { memberPaths } from '../../lib/plan/paths.ts'
import { unitArmScript, unitHold } from '../../lib/plan/systemd.ts'
import { SHELLS, available } from '../support/shells.ts'

const base = mkdtempSync(join(tmpdir(), 'hold-run-'))
afterAll(() => rmSync(base, { recursive: true, force: true }))


let n = 0
/** A member's dirs, a snapshot, and stand-in tools: `reload` says whether daemon-reload works, `restore` whether etcdutl does. */
function host(o: { reload: boolean; restore: boolean }) {
  const dir = join(base, `h${n++}`)
  const tools = join(dir, 'bin')
  mkdirSync(tools, { recursive: true })
  const root = join(dir, 'root')
  const loaded = join(dir, 'loaded')
  // systemd's view: daemon-reload loads every drop-in on disk; show lists what it loaded.
  writeFileSync(join(tools, 'systemctl'), `#!/bin/sh
case "$1" in
  daemon-reload) ${o.reload ? `ls ${root}/run/systemd/system/*.d/*.conf 2>/dev/null | tr '\\n' ' ' > ${loaded}; exit 0` : 'echo "Failed to reload daemon: Access denied" >&2; exit 1'} ;;
  show) echo "DropInPaths=$(cat ${loaded} 2>/dev/null)" ;;
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
    paths, ports: [2379], sha256: sha, mountpoint: false, arm: unitArmScript('etcd', root),
    restore: { tool: 'etcdutl', bin: join(tools, 'etcdutl'), name: 'e1', initialCluster: 'e1=https://a:2380', token: 'tok', peerUrl: 'https://a:2380', skipHashCheck: true },
  })
  return { script, tools, paths, hold: unitHold('etcd', root) }
}

describe.each(SHELLS)('the restore step arming the hold, under %s', (_name, shell) => {
  const run = (h: ReturnType<typeof host>) => spawnSync(shell[0], [...shell.slice(1), '-c', h.script.text], { encoding: 'utf8', env: { ...process.env, PATH: `${h.tools}:${process.env.PATH}` } })

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
})

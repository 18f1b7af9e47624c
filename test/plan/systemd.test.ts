import { describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { holdDropInLines, unitArmScript, unitDisarmScript, unitHold, unitStartScript, unitStopScript } from '../../lib/plan/systemd.ts'
import { restoreScript, startScript, stopScript } from '../../lib/plan/scripts.ts'
import { memberPaths } from '../../lib/plan/paths.ts'
import { probeScript } from '../../lib/plan/facts.ts'

const spec = { service: 'systemd' as const, serviceName: 'etcd', dataDir: '/var/lib/etcd', ports: [2380, 2379] }

/** Where a piece of text is in a script: a test of order that fails if the piece is missing. */
const positionIn = (script: string) => (piece: string) => {
  expect(script, piece).toContain(piece)
  return script.indexOf(piece)
}

describe('stopping and starting a member under systemd', () => {
  it('holds the unit from a runtime drop-in whose assertion fails while a hold file exists', () => {
    expect(unitHold('etcd')).toEqual({ unit: 'etcd.service', file: '/run/etcd-rescue/etcd.service.hold', dropIn: '/run/systemd/system/etcd.service.d/zz-etcd-rescue-hold.conf' })
    expect(unitHold('etcd.service')).toEqual(unitHold('etcd'))
    expect(unitHold('etcd@main').unit).toBe('etcd@main.service')
    const lines = holdDropInLines(unitHold('etcd'))
    expect(lines.filter((l) => !l.startsWith('#'))).toEqual(['[Unit]', 'AssertPathExists=!/run/etcd-rescue/etcd.service.hold'])
  })

  it('loads the drop-in (if the restore did not), then creates the hold file, then stops the unit; no mask', () => {
    const stop = unitStopScript('etcd').text
    const at = positionIn(stop)
    expect(at('systemctl daemon-reload')).toBeLessThan(at(': > "$H"'))
    expect(at(': > "$H"')).toBeLessThan(at('systemctl stop --no-block'))
    // A unit that could not be asked to stop is left unheld.
    expect(stop).toContain('systemctl stop --no-block "$U" || { rm -f "$H"; exit 1; }')
    // The drop-in is loaded (DropInPaths names it), checked again after a reload.
    expect(stop.match(/held \|\|/g)).toHaveLength(1)
    expect(stop).toContain("'AssertPathExists=!/run/etcd-rescue/etcd.service.hold'")
    expect(stop).not.toContain('systemctl mask')
    expect(stop).not.toContain('--value -- "$U" | tr')
  })

  it('removes the hold file, then starts the unit, with no reload of systemd in the start step', () => {
    const start = unitStartScript('etcd').text
    const at = positionIn(start)
    expect(at('rm -f "$H"')).toBeLessThan(at('systemctl start --no-block'))
    expect(start).not.toContain('daemon-reload')
    expect(start).not.toContain('unmask')
  })

  it('removes the drop-in after the verdict, unless a hold file is back', () => {
    const d = unitDisarmScript('etcd').text
    const at = positionIn(d)
    at('if [ -e "$H" ]; then echo "hold.kept=$H"; exit 0; fi')
    expect(at('if [ -e "$H" ]')).toBeLessThan(at('rm -f "$F"'))
    expect(at('rm -f "$F"')).toBeLessThan(at('systemctl daemon-reload'))
    expect(d).toContain('echo "hold.left=$F"')
  })

  it('stops the unit first, then any etcd of this member left outside it', () => {
    const s = stopScript(spec).text
    expect(s.indexOf('systemctl stop')).toBeLessThan(s.indexOf('find_pids()'))
    const start = startScript({ ...spec, process: { etcdBin: '/x', name: 'e', dataDir: '/d', peerUrl: 'https://a:2380', clientUrl: 'https://a:2379' }, restored: { state: '/s', mark: 'restored x t' } }).text
    // The start guard (this run's restore is in place) runs before the hold is lifted and the unit started.
    expect(start.indexOf('not starting it')).toBeLessThan(start.indexOf('rm -f "$H"'))
    expect(start).toContain('systemctl start --no-block')
  })

  it('arms the hold beside the restore: in the background while etcdutl runs, waited for on every way out', () => {
    const sha = 'ab'.repeat(32)
    const spec = { paths: memberPaths('/var/lib/etcd', sha, 'tok', '20260101T000000Z', false), ports: [2379], sha256: sha, mountpoint: false, restore: { tool: 'etcdutl' as const, bin: '/usr/local/bin/etcdutl', name: 'e1', initialCluster: 'e1=https://a:2380', token: 'tok', peerUrl: 'https://a:2380', skipHashCheck: true } }
    const r = restoreScript({ ...spec, arm: unitArmScript('etcd') }).text
    const at = positionIn(r)
    // The order only; hold-run.test.ts runs it under dash, bash as sh and busybox sh.
    expect(at('systemctl daemon-reload')).toBeLessThan(at('etcdutl snapshot restore'))
    expect(at(') > "$W/arm.log" 2>&1 &')).toBeLessThan(at('etcdutl snapshot restore'))
    expect(at("trap 'wait \"$armpid\" 2>/dev/null || :' EXIT")).toBeLessThan(at('etcdutl snapshot restore'))
    expect(at('if wait "$armpid"')).toBeGreaterThan(at('etcdutl snapshot restore'))
    expect(at('trap - EXIT')).toBeGreaterThan(at('if wait "$armpid"'))
    expect(at('trap - EXIT')).toBeLessThan(at('echo "restore=ready $T"'))
    // A process member has no unit to hold.
    expect(restoreScript(spec).text).not.toContain('armpid')
    execFileSync('sh', ['-n', '-c', r])
  })

  it('arms only what systemd has not loaded yet: the stop step after an armed restore needs no reload', () => {
    const arm = unitArmScript('etcd').text
    expect(arm.indexOf('if ! held; then')).toBeLessThan(arm.indexOf('systemctl daemon-reload'))
    // The stop step runs the same arming (after the variables it has set itself).
    expect(unitStopScript('etcd').text).toContain(arm.slice(arm.indexOf('\n') + 1))
  })

  it('never asks systemctl show for --value, which systemd 219 (RHEL 7) does not have', () => {
    const probe = probeScript({ dataDir: '/var/lib/etcd', binDir: '/usr/local/bin', work: '/var/lib/.w', snapshot: '/var/lib/.w/s.db', snapshotSize: 1, snapshotSha: 'ab'.repeat(32), ports: [2379, 2380], service: 'systemd', serviceName: 'etcd' })
    for (const s of [probe, unitStopScript('etcd'), unitStartScript('etcd'), unitArmScript('etcd'), unitDisarmScript('etcd')]) {
      expect(s.text).toContain('systemctl')
      expect(s.text).not.toMatch(/systemctl [^\n]*--value/)
    }
  })

  it('writes scripts POSIX sh parses', () => {
    for (const s of [unitStopScript("et'cd"), unitStartScript('etcd'), unitArmScript('etcd'), unitDisarmScript('etcd'), stopScript(spec)]) execFileSync('sh', ['-n', '-c', s.text])
  })
})

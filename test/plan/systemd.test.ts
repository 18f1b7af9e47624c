import { describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { holdDropInLines, unitHold, unitStartScript, unitStopScript } from '../../lib/plan/systemd.ts'
import { startScript, stopScript } from '../../lib/plan/scripts.ts'

const spec = { service: 'systemd' as const, serviceName: 'etcd', dataDir: '/var/lib/etcd', ports: [2380, 2379] }

describe('stopping and starting a member under systemd', () => {
  it('holds the unit from a runtime drop-in whose assertion fails while a hold file exists', () => {
    expect(unitHold('etcd')).toEqual({ unit: 'etcd.service', file: '/run/etcd-rescue/etcd.service.hold', dropIn: '/run/systemd/system/etcd.service.d/zz-etcd-rescue-hold.conf' })
    expect(unitHold('etcd.service')).toEqual(unitHold('etcd'))
    expect(unitHold('etcd@main').unit).toBe('etcd@main.service')
    const lines = holdDropInLines(unitHold('etcd'))
    expect(lines.filter((l) => !l.startsWith('#'))).toEqual(['[Unit]', 'AssertPathExists=!/run/etcd-rescue/etcd.service.hold'])
  })

  it('creates the hold file, then loads the drop-in, before stopping the unit; no mask', () => {
    const stop = unitStopScript('etcd').text
    const at = (s: string) => stop.indexOf(s)
    expect(at(': > "$H"')).toBeGreaterThan(-1)
    expect(at(': > "$H"')).toBeLessThan(at('systemctl daemon-reload'))
    expect(at('systemctl daemon-reload')).toBeLessThan(at('systemctl stop'))
    // The drop-in is loaded (DropInPaths names it), checked again after a reload.
    expect(stop.match(/held \|\|/g)).toHaveLength(1)
    expect(stop).toContain("'AssertPathExists=!/run/etcd-rescue/etcd.service.hold'")
    expect(stop).not.toContain('systemctl mask')
  })

  it('removes the hold file before the start and no reload comes between them; the drop-in goes after', () => {
    const start = unitStartScript('etcd').text
    const at = (s: string) => start.indexOf(s)
    expect(at('rm -f "$H"')).toBeGreaterThan(-1)
    expect(at('rm -f "$H"')).toBeLessThan(at('systemctl start --no-block'))
    expect(start.slice(0, at('systemctl start --no-block'))).not.toContain('daemon-reload')
    expect(at('rm -f "$F"')).toBeGreaterThan(at('systemctl start --no-block'))
    expect(at('systemctl daemon-reload')).toBeGreaterThan(at('rm -f "$F"'))
    expect(start).toContain('echo "hold.left=$F"')
    expect(start).not.toContain('unmask')
  })

  it('stops the unit first, then any etcd of this member left outside it', () => {
    const s = stopScript(spec).text
    expect(s.indexOf('systemctl stop')).toBeLessThan(s.indexOf('find_pids()'))
    const start = startScript({ ...spec, process: { etcdBin: '/x', name: 'e', dataDir: '/d', peerUrl: 'https://a:2380', clientUrl: 'https://a:2379' }, restored: { state: '/s', mark: 'restored x t' } }).text
    // The start guard (this run's restore is in place) runs before the hold is lifted and the unit started.
    expect(start.indexOf('not starting it')).toBeLessThan(start.indexOf('rm -f "$H"'))
    expect(start).toContain('systemctl start --no-block')
  })

  it('writes scripts POSIX sh parses', () => {
    for (const s of [unitStopScript("et'cd"), unitStartScript('etcd'), stopScript(spec)]) execFileSync('sh', ['-n', '-c', s.text])
  })
})

import { describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { unitStartScript, unitStopScript } from '../../lib/plan/systemd.ts'
import { startScript, stopScript } from '../../lib/plan/scripts.ts'

const spec = { service: 'systemd' as const, serviceName: 'etcd', dataDir: '/var/lib/etcd', ports: [2380, 2379] }

describe('stopping and starting a member under systemd', () => {
  it('masks the unit for this boot before stopping it, and unmasks it before starting it', () => {
    const stop = unitStopScript('etcd').text
    expect(stop.indexOf('systemctl mask --runtime')).toBeGreaterThan(-1)
    expect(stop.indexOf('systemctl mask --runtime')).toBeLessThan(stop.indexOf('systemctl stop'))
    const start = unitStartScript('etcd').text
    expect(start.indexOf('systemctl unmask --runtime')).toBeLessThan(start.indexOf('systemctl start --no-block'))
  })

  it('stops the unit first, then any etcd of this member left outside it', () => {
    const s = stopScript(spec).text
    expect(s.indexOf('systemctl stop')).toBeLessThan(s.indexOf('find_pids()'))
    const start = startScript({ ...spec, process: { etcdBin: '/x', name: 'e', dataDir: '/d', peerUrl: 'https://a:2380', clientUrl: 'https://a:2379' }, restored: { state: '/s', mark: 'restored x t' } }).text
    // The start guard (this run's restore is in place) runs before the unit is unmasked and started.
    expect(start.indexOf('not starting it')).toBeLessThan(start.indexOf('systemctl unmask'))
    expect(start).toContain('systemctl start --no-block')
  })

  it('writes scripts POSIX sh parses', () => {
    for (const s of [unitStopScript("et'cd"), unitStartScript('etcd'), stopScript(spec)]) execFileSync('sh', ['-n', '-c', s.text])
  })
})

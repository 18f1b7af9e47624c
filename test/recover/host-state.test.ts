// Where each member stands after a run that stopped part way: one case per
// state an operator must tell apart before running again.
import { describe, expect, it } from 'vitest'
import { hostStates } from '../../lib/recover/host-state.ts'
import { Journal } from '../../lib/task/journal.ts'
import type { RecoveryPlan } from '../../lib/plan/recovery.ts'

const plan = {
  members: ['etcd1', 'etcd2', 'etcd3', 'etcd4', 'etcd5', 'etcd6'].map((name) => ({ name, paths: { dataDir: '/var/lib/etcd', state: '/var/lib/.etcd-rescue-etcd/state', restoreTmp: '/var/lib/.etcd-rescue-etcd/restore-t' } })),
} as unknown as RecoveryPlan

describe('hostStates', () => {
  it('tells copied, restored beside, stopped, set aside, unknown and started apart', () => {
    const j = new Journal()
    const t = new Date()
    for (const h of ['etcd1', 'etcd2', 'etcd3', 'etcd4', 'etcd6']) j.add('copy', h, t, 'ok', 'copied')
    j.add('copy', 'etcd5', t, 'failed', 'copy failed, 3 attempts: no SSH answer')
    for (const h of ['etcd2', 'etcd3', 'etcd4', 'etcd6']) j.add('restore', h, t, 'ok', 'restored rev 5, ID 1, into /var/lib/.etcd-rescue-etcd/restore-t')
    for (const h of ['etcd2', 'etcd3', 'etcd4']) j.add('stop', h, t, 'ok', 'stopped pid 7')
    j.add('swap', 'etcd2', t, 'ok', 'restored data in /var/lib/etcd; old data → /var/lib/etcd.etcd-rescue-old-20261125T000000Z')
    j.add('swap', 'etcd3', t, 'failed', 'could not open a channel: No response from server')
    j.add('swap', 'etcd4', t, 'failed', 'remote script "set -e…" failed (exit code null)')
    const lines = hostStates(plan, j)
    expect(lines[0]).toBe('etcd1: snapshot copied; etcd not stopped by this run, data untouched in /var/lib/etcd')
    expect(lines[1]).toBe('etcd2: etcd stopped, restored into /var/lib/etcd, old data set aside at /var/lib/etcd.etcd-rescue-old-20261125T000000Z; not started')
    // The channel never opened: nothing ran, so nothing was set aside.
    expect(lines[2]).toBe('etcd3: etcd stopped; old data NOT set aside, still in /var/lib/etcd; restored data not moved in; swap FAILED (could not open a channel: No response from server)')
    // Lost mid-script: the host alone knows; the state file says.
    expect(lines[3]).toMatch(/^etcd4: etcd stopped; moving the restored data in did not finish, old data may be set aside \(see \/var\/lib\/\.etcd-rescue-etcd\/state\); swap FAILED/)
    expect(lines[4]).toBe('etcd5: etcd not stopped by this run, data untouched in /var/lib/etcd; copy FAILED (copy failed, 3 attempts: no SSH answer)')
    expect(lines[5]).toBe('etcd6: snapshot copied and restored into /var/lib/.etcd-rescue-etcd/restore-t; etcd not stopped by this run, data untouched in /var/lib/etcd')
  })

  it('says when a member runs data an earlier run restored', () => {
    const j = new Journal()
    j.add('stop', 'etcd1', new Date(), 'skipped', 'already running restored data: left alone')
    j.add('start', 'etcd2', new Date(), 'ok', 'started')
    const lines = hostStates(plan, j)
    expect(lines[0]).toBe('etcd1: etcd running on data restored by an earlier run, left alone')
    expect(lines[1]).toBe('etcd2: etcd started on restored data; old data set aside')
  })

  it('says how to lift the hold of a systemd member stopped and not started', () => {
    const sd = { members: plan.members.map((m) => ({ ...m, unit: 'etcd' })) } as unknown as RecoveryPlan
    const j = new Journal()
    const t = new Date()
    j.add('stop', 'etcd1', t, 'ok', 'etcd stopped')
    j.add('swap', 'etcd1', t, 'ok', 'restored data in /var/lib/etcd; old data → /var/lib/etcd.old')
    j.add('stop', 'etcd2', t, 'ok', 'etcd stopped')
    j.add('start', 'etcd3', t, 'ok', 'started=unit etcd')
    j.add('stop', 'etcd4', t, 'ok', 'etcd stopped')
    j.add('swap', 'etcd4', t, 'ok', 'restored data in /var/lib/etcd; old data → /var/lib/etcd.old')
    j.add('start', 'etcd4', t, 'failed', 'start did not finish within 120 s on this host')
    const lines = hostStates(sd, j)
    // Its start script removes the hold file first: whether it got that far is not known.
    expect(lines[3]).toBe('etcd4: etcd stopped, restored into /var/lib/etcd, old data set aside at /var/lib/etcd.old; not started; etcd may still be held (while /run/etcd-rescue/etcd.service.hold exists every start of it fails; running again removes it when it starts the member); start FAILED (start did not finish within 120 s on this host)')
    const held = 'etcd is held: every start of it fails until /run/etcd-rescue/etcd.service.hold is removed (running again removes it when it starts the member)'
    expect(lines[0]).toBe(`etcd1: etcd stopped, restored into /var/lib/etcd, old data set aside at /var/lib/etcd.old; not started; ${held}`)
    expect(lines[1]).toBe(`etcd2: etcd stopped; old data NOT set aside, still in /var/lib/etcd; restored data not moved in; ${held}`)
    expect(lines[2]).not.toContain('held')
    // A process member has no unit to hold.
    expect(hostStates(plan, j)[0]).not.toContain('held')
  })
})

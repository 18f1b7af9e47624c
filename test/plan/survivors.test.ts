import { describe, expect, it } from 'vitest'
import { chooseSurvivor, compareWithSnapshot, DataLossError, SurvivorChoiceError } from '../../lib/plan/survivors.ts'
import { survivorGuard } from '../../lib/plan/survivor-guard.ts'
import type { MemberData } from '../../lib/plan/survivor-read.ts'

type Held = Partial<MemberData> & { member: string }
const none = (member: string): MemberData => ({ member, hasData: false, state: 'none', tools: {} })
const run = (member: string, revision: number, raftIndex: number, rest: Held = { member }): MemberData => ({ hasData: true, state: 'running', tools: {}, clusterId: 'c1', ...rest, member, revision, raftIndex })
const stop = (member: string, revision: number, rest: Held = { member }): MemberData => ({ hasData: true, state: 'stopped', tools: {}, clusterId: 'c1', ...rest, member, revision })
const bad = (member: string, state: 'running' | 'stopped', error: string): MemberData => ({ member, hasData: true, state, tools: {}, error })

describe('chooseSurvivor', () => {
  const cases: Array<[string, MemberData[], string, RegExp]> = [
    ['the highest revision wins, whatever the state', [run('e1', 100, 110), stop('e2', 140), run('e3', 120, 130)], 'e2', /highest revision: 140, next e3 at 120/],
    ['equal revisions: the higher raft index', [run('e1', 100, 105), run('e2', 100, 109)], 'e2', /higher raft index \(109 against 105\)/],
    ['equal revisions, raft index unknown on one: a running member over a stopped one', [stop('e1', 100), run('e2', 100, 101)], 'e2', /and running/],
    ['equal everything: inventory order', [stop('e1', 100), stop('e2', 100)], 'e1', /first in the inventory/],
    ['equal revisions between stopped members: the higher consistent_index', [stop('e1', 100, { member: 'e1', raftIndex: 103 }), stop('e2', 100, { member: 'e2', raftIndex: 107 })], 'e2', /higher raft index \(107 against 103\)/],
    ['equal revisions and raft indexes: a running member over a stopped one', [stop('e1', 100, { member: 'e1', raftIndex: 104 }), run('e2', 100, 104)], 'e2', /and running/],
    ['members without data are passed over', [none('e1'), stop('e2', 7), none('e3')], 'e2', /the only member with readable data \(revision 7\)/],
    ['a running member without quorum counts like any other', [run('e1', 50, 60, { member: 'e1', noLeader: true }), stop('e2', 49)], 'e1', /highest revision: 50/],
    ['a member whose database is damaged is passed over', [{ ...bad('e1', 'stopped', 'member/snap/db: no valid meta page (bad magic or checksum)'), damaged: true }, run('e2', 90, 95)], 'e2', /the only member with readable data/],
    ['a stopped member with unknown cluster ID does not conflict', [stop('e1', 80, { member: 'e1', clusterId: undefined }), run('e2', 90, 95)], 'e2', /highest revision: 90/],
  ]
  for (const [name, held, chosen, reason] of cases) {
    it(name, () => {
      const c = chooseSurvivor(held)
      expect(c.chosen.member).toBe(chosen)
      expect(c.reason).toMatch(reason)
      expect(c.held).toBe(held)
    })
  }

  const refusals: Array<[string, MemberData[], RegExp]> = [
    ['no member holds data', [none('e1'), none('e2')], /no member holds data to recover from \(e1, e2/],
    ['a member cannot be read: it might be the freshest', [run('e1', 100, 101), bad('e2', 'stopped', 'no member/snap/db')], /cannot read what this member holds[\s\S]*e2 \(stopped\): no member\/snap\/db/],
    ['every database damaged', [{ ...bad('e1', 'stopped', 'member/snap/db: not a tree page (flags 0)'), damaged: true }], /no member holds readable data: e1: member\/snap\/db: not a tree page/],
    ['members of different clusters', [run('e1', 100, 101, { member: 'e1', clusterId: 'aa' }), stop('e2', 90, { member: 'e2', clusterId: 'bb' })], /different clusters: cluster aa on e1; cluster bb on e2/],
  ]
  for (const [name, held, message] of refusals) {
    it(`refuses: ${name}`, () => {
      let err: unknown
      try {
        chooseSurvivor(held)
      } catch (e) {
        err = e
      }
      expect(err).toBeInstanceOf(SurvivorChoiceError)
      expect((err as SurvivorChoiceError).exitCode).toBe(3)
      expect((err as Error).message).toMatch(message)
      expect((err as Error).message).toMatch(/Nothing was changed/)
    })
  }
})

describe('compareWithSnapshot and the guard', () => {
  const held = [run('e1', 130, 140), stop('e2', 100), none('e3'), bad('e4', 'running', 'endpoint status: context deadline exceeded')]

  it('counts the revisions each member holds past the snapshot', () => {
    const c = compareWithSnapshot(held, { revision: 100 })
    expect(c.members.map((m) => m.revisionsLost)).toEqual([30, 0, 0, 0])
    expect(c.newer.map((m) => m.member)).toEqual(['e1'])
    expect(c.revisionsLost).toBe(30)
    expect(c.unreadable.map((m) => m.member)).toEqual(['e4'])
  })

  it('refuses, naming the member, both revisions and the count; nothing given up', () => {
    const g = survivorGuard(held, { revision: 100 }, false)
    expect(g.refusal).toBeInstanceOf(DataLossError)
    expect(g.refusal!.exitCode).toBe(3)
    expect(g.refusal!.message).toMatch(/e1 \(running\) holds revision 130, the snapshot 100: 30 revision\(s\) would be lost/)
    expect(g.refusal!.message).not.toMatch(/e2/)
    expect(g.report.givenUp).toEqual([])
    expect(g.text).toMatch(/e1 +running, revision 130, raft index 140, cluster c1 +✖ 30 revision\(s\) newer/)
    expect(g.text).toMatch(/e2 +stopped, revision 100, cluster c1 +✔ nothing newer/)
    expect(g.text).toMatch(/e4 +running, could not be read: endpoint status: context deadline exceeded +\? unknown/)
  })

  it('with --accept-data-loss goes ahead and records what was given up', () => {
    const g = survivorGuard(held, { revision: 100 }, true)
    expect(g.refusal).toBeUndefined()
    expect(g.report.givenUp).toEqual([{ member: 'e1', revision: 130, revisionsLost: 30 }])
    expect(g.report.warnings.join('\n')).toMatch(/giving up 30 revision\(s\) held by e1 \(revision 130\)/)
    expect(g.text).toMatch(/given up \(--accept-data-loss\)/)
  })

  it('an older member or an equal one is no reason to refuse', () => {
    expect(survivorGuard([run('e1', 100, 101), stop('e2', 20)], { revision: 100 }, false).refusal).toBeUndefined()
  })

  it('warns about data of different clusters without refusing a snapshot restore', () => {
    const g = survivorGuard([run('e1', 10, 11, { member: 'e1', clusterId: 'aa' }), stop('e2', 9, { member: 'e2', clusterId: 'bb' })], { revision: 10 }, false)
    expect(g.refusal).toBeUndefined()
    expect(g.report.warnings.join('\n')).toMatch(/2 different clusters \(aa, bb\)/)
  })
})

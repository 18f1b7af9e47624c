import { describe, expect, it } from 'vitest'
import { judge, type Evidence } from '../../lib/recover/verdict.ts'
import { threeMemberPlan } from '../support/plan.ts'

const plan = threeMemberPlan('3.4.23')

/** What a correct recovery looks like from the members. */
function good(): Evidence {
  const leader = plan.members[0].memberId
  return {
    members: Object.fromEntries(plan.members.map((m) => [m.name, {
      healthy: true,
      status: { clusterId: plan.clusterId, memberId: m.memberId, revision: 120, raftTerm: 2, leader, version: '3.4.23', dbSize: 1, errors: [] },
    }])),
    hashRevision: 120,
    hashes: { etcd1: '42', etcd2: '42', etcd3: '42' },
    memberList: plan.members.map((m) => ({ id: m.memberId, name: m.name, peerUrls: [m.peerUrl], clientUrls: [m.clientUrl] })),
    alarms: { ok: true, text: '' },
  }
}
const failing = (e: Evidence, rev = 100) => judge(plan, e, rev).filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`)

describe('judge', () => {
  it('passes a correct recovery', () => {
    expect(failing(good())).toEqual([])
  })

  it('catches a member restored from another snapshot, though all are healthy', () => {
    const e = good()
    e.hashes.etcd2 = '7'
    expect(failing(e)).toEqual(['hashkv: differs at revision 120: etcd1=42, etcd2=7, etcd3=42'])
  })

  it('catches a token typo on one member (another cluster ID)', () => {
    const e = good()
    e.members.etcd3.status!.clusterId = '1234'
    e.members.etcd3.healthy = false
    expect(failing(e).join('\n')).toMatch(/cluster-id: expected [0-9a-f]+; etcd3 reports 4d2/)
  })

  it('catches lost data, split leadership, a foreign member list and alarms', () => {
    expect(failing(good(), 121)).toEqual(['revision: lowest member revision 120, snapshot revision 121: data is missing'])
    const split = good()
    split.members.etcd3.status!.leader = plan.members[2].memberId
    expect(failing(split)).toEqual(['one-leader: members see 2 different leaders'])
    const foreign = good()
    foreign.memberList = foreign.memberList!.slice(0, 2)
    expect(failing(foreign)[0]).toMatch(/^member-list: member list differs/)
    const alarm = good()
    alarm.alarms.text = 'memberID:1 alarm:NOSPACE'
    expect(failing(alarm)).toEqual(['no-alarms: alarms: memberID:1 alarm:NOSPACE'])
  })
})

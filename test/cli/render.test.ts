// The recap a run ends with: per host, when each step began and how long it took.
import { describe, expect, it } from 'vitest'
import { recapTable } from '../../lib/cli/render.ts'
import { Journal } from '../../lib/task/journal.ts'
import type { RecoverResult } from '../../lib/recover/recover.ts'

describe('recapTable', () => {
  it('gives each step of each host as began+took, in the order of a run, with skipped and failed marked', () => {
    const journal = new Journal()
    const t0 = journal.startedAt.getTime()
    const add = (phase: string, host: string, from: number, to: number, outcome: 'ok' | 'skipped' | 'failed' = 'ok') =>
      journal.records.push({ phase, host, startedAt: new Date(t0 + from).toISOString(), endedAt: new Date(t0 + to).toISOString(), seconds: (to - from) / 1000, outcome, detail: '' })
    add('copy', 'etcd1', 700, 2100)
    add('restore', 'etcd1', 2100, 2700)
    add('stop', 'etcd1', 3300, 3350)
    add('copy', 'etcd2', 700, 2600, 'skipped')
    add('restore', 'etcd2', 2600, 3300, 'failed')
    const r = { members: [{ name: 'etcd1' }, { name: 'etcd2' }], journal } as unknown as RecoverResult
    expect(recapTable(r).split('\n')).toEqual([
      'member  copy     restore  stop',
      'etcd1   0.7+1.4  2.1+0.6  3.3+0.1',
      'etcd2   -        ✖',
      '(each step: began at s into the run + seconds it took; - already done, ✖ failed)',
    ])
  })
})

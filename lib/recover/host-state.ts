// Where each member stands after a run that stopped part way (a failure, a lost
// connection, Ctrl-C), read from the journal: what the operator needs before
// deciding anything is, per host, whether etcd was stopped and whether its old
// data was moved aside (and where), not a list of steps.
import type { RecoveryPlan } from '../plan/recovery.ts'
import type { Journal } from '../task/journal.ts'
import { unitHold } from '../plan/systemd.ts'

export function hostStates(plan: RecoveryPlan, journal: Journal): string[] {
  return plan.members.map((m) => {
    const rec = (phase: string) => journal.records.find((r) => r.phase === phase && r.host === m.name)
    const ok = (phase: string) => ['ok', 'skipped'].includes(rec(phase)?.outcome ?? '')
    const failed = ['copy', 'restore', 'stop', 'swap', 'start'].map((p) => rec(p)).find((r) => r?.outcome === 'failed')
    const failure = failed ? `; ${failed.phase} FAILED (${failed.detail})` : ''
    const dataDir = m.paths.dataDir
    // A unit stopped by this run stays held until a run starts it: say how to lift it by hand.
    // (A start that failed may have lifted it already: its script removes the file first.)
    const holdFile = m.unit && unitHold(m.unit).file
    const held = !holdFile ? '' : rec('start')
      ? `; ${m.unit} may still be held (while ${holdFile} exists every start of it fails; running again removes it when it starts the member)`
      : `; ${m.unit} is held: every start of it fails until ${holdFile} is removed (running again removes it when it starts the member)`
    // Stop skipped: an earlier run restored and started this member, and it was left running.
    if (rec('stop')?.outcome === 'skipped' && !failed) return `${m.name}: etcd running on data restored by an earlier run, left alone`
    if (ok('start')) return `${m.name}: etcd started on restored data; old data set aside`
    if (ok('swap')) {
      const aside = /old data → (\S+)/.exec(rec('swap')!.detail)?.[1]
      return `${m.name}: etcd stopped, restored into ${dataDir}, ${aside ? `old data set aside at ${aside}` : 'old data set aside by an earlier run (or there was none)'}; not started${held}${failure}`
    }
    // A channel that never opened ran nothing; a connection lost mid-script leaves it unknown.
    const neverRan = failed && /could not open a channel/.test(failed.detail)
    if (failed?.phase === 'swap' && !neverRan) return `${m.name}: etcd stopped; moving the restored data in did not finish, old data may be set aside (see ${m.paths.state})${held}${failure}`
    if (ok('stop')) return `${m.name}: etcd stopped; old data NOT set aside, still in ${dataDir}; restored data not moved in${held}${failure}`
    const done = ok('restore') ? `snapshot copied and restored into ${m.paths.restoreTmp}; ` : ok('copy') ? 'snapshot copied; ' : ''
    return `${m.name}: ${done}etcd not stopped by this run, data untouched in ${dataDir}${failure}`
  })
}

// What a run did, as it happens: per host and phase, when it started and ended,
// the outcome, and what it changed. It feeds the recap table, the --report JSON,
// and the "what was changed and how to go on" message of a failed run.

export interface PhaseRecord {
  phase: string
  host: string
  startedAt: string
  endedAt: string
  seconds: number
  outcome: 'ok' | 'skipped' | 'failed'
  detail: string
  /** What the step says of itself for machines (the copy: how it went, bytes sent); `detail` says it to people. */
  facts?: object
}

/** Phases that change a host; a failure after one of these is exit code 1. */
export const CHANGING_PHASES = new Set(['copy', 'restore', 'stop', 'swap', 'start'])

export class Journal {
  readonly records: PhaseRecord[] = []
  readonly startedAt = new Date()

  add(phase: string, host: string, started: Date, outcome: PhaseRecord['outcome'], detail: string, facts?: object): PhaseRecord {
    const ended = new Date()
    const r: PhaseRecord = {
      phase,
      host,
      startedAt: started.toISOString(),
      endedAt: ended.toISOString(),
      seconds: (ended.getTime() - started.getTime()) / 1000,
      outcome,
      detail,
      ...(facts ? { facts } : {}),
    }
    this.records.push(r)
    return r
  }

  /** Whether any host was changed yet (exit code 1 rather than 3 on failure). */
  changed(): boolean {
    return this.records.some((r) => CHANGING_PHASES.has(r.phase) && r.outcome === 'ok')
  }

  /** Changing steps that failed: each may have changed its host partway (a stop that killed but did not confirm, a copy cut short). */
  failedChanges(): string[] {
    return this.records
      .filter((r) => CHANGING_PHASES.has(r.phase) && r.outcome === 'failed')
      .map((r) => `${r.host}: ${r.phase} failed partway: ${r.detail}`)
  }

  /** Human lines of what this run changed, per host, for a failed run's message. */
  changes(): string[] {
    return this.records
      .filter((r) => CHANGING_PHASES.has(r.phase) && r.outcome === 'ok')
      .map((r) => `${r.host}: ${r.phase}: ${r.detail}`)
  }
}

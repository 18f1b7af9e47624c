// A host's part of a procedure as data: a list of steps that one loop runs per
// host, each host going on to its next step as soon as its own previous step is
// done. Only a gate holds a host back: before its step, every host must have
// finished a named earlier step (say, every old member stopped before any new one
// starts). A host that fails at or before that step, or a run asked to stop,
// closes the gate, and the hosts held there end without taking the step.
import pLimit from 'p-limit'
import { heartbeat, oneLine } from './phase.ts'
import type { Journal } from './journal.ts'
import type { PipelineView, Ui } from './ui.ts'

export interface Gate {
  /** The step every host must have finished (ok or skipped) before this one starts anywhere. */
  after: string
  /** What it guarantees, said when it opens: "every member restored". */
  text: string
}

export interface Step {
  /** The journal's and the report's name for it: copy, restore, stop… */
  key: string
  /** Short, for the task list: "stop the old member". */
  title: string
  gate?: Gate
  /** Resolves with a line for the UI; `skipped` marks work an earlier run already did; `facts`, what the report gives machines. */
  run: (host: string, view: { update(text: string): void }) => Promise<{ text: string; skipped?: boolean; facts?: object }>
}

export interface HostRun {
  /** Steps finished, in order (ok or skipped). */
  done: string[]
  failed?: { step: string; error: unknown }
  /** The gate that held this host (another host failed, or the run was stopped). */
  heldAt?: Gate
  /** Stopped before its next step because the run was asked to stop. */
  interrupted?: boolean
}

export interface PipelineResult {
  hosts: Map<string, HostRun>
  failed: Array<{ host: string; step: string; error: unknown }>
  interrupted: boolean
  /** The last step every host finished, if any. */
  allThrough?: string
}

export interface PipelineOptions {
  /** Steps run at once across hosts (a held slot is released while a host waits at a gate). */
  forks: number
  /** Aborted: no host starts a new step; running steps finish. */
  signal?: AbortSignal
  /** Every host stops after this step (tests: an interrupted run at an exact point). */
  until?: string
}

export async function runPipeline(ui: Ui, journal: Journal, title: string, hosts: string[], steps: Step[], o: PipelineOptions): Promise<PipelineResult> {
  const index = new Map(steps.map((s, i) => [s.key, i]))
  for (const s of steps) {
    if (s.gate && !((index.get(s.gate.after) ?? Infinity) < index.get(s.key)!)) throw new Error(`gate of ${s.key}: ${s.gate.after} is not an earlier step`)
  }
  const last = o.until === undefined ? steps.length - 1 : index.get(o.until)
  if (last === undefined) throw new Error(`no step ${o.until}`)
  const view: PipelineView = ui.pipeline(title, hosts, steps.slice(0, last + 1).map((s) => ({ key: s.key, title: s.title, gate: s.gate?.text })))
  const limit = pLimit(Math.max(1, o.forks))
  const runs = new Map(hosts.map((h): [string, HostRun] => [h, { done: [] }]))

  // One barrier per gated step: open once every host finished the step it names, closed by the first host that cannot.
  const gates = new Map(steps.filter((s) => s.gate && index.get(s.key)! <= last).map((s) => {
    let settle!: (open: boolean) => void
    const opened = new Promise<boolean>((resolve) => (settle = resolve))
    return [s.key, { step: s, after: index.get(s.gate!.after)!, through: new Set<string>(), state: 'waiting' as 'waiting' | 'open' | 'closed', why: '', opened, settle }]
  }))
  const finished = (host: string, stepIndex: number) => {
    for (const g of gates.values()) {
      if (g.after !== stepIndex || g.state !== 'waiting') continue
      g.through.add(host)
      if (g.through.size === hosts.length) {
        g.state = 'open'
        view.gate(`${g.step.gate!.text}; next: ${g.step.title}`, true)
        g.settle(true)
      }
    }
  }
  // A host that ends before finishing step i closes every gate that needs it.
  const ended = (beforeIndex: number, why: string) => {
    for (const g of gates.values()) {
      if (g.after < beforeIndex || g.state !== 'waiting') continue
      g.state = 'closed'
      g.why = why
      g.settle(false)
    }
  }

  await Promise.all(hosts.map(async (host) => {
    const run = runs.get(host)!
    for (let i = 0; i <= last; i++) {
      const step = steps[i]
      const gate = gates.get(step.key)
      if (gate) {
        if (gate.state === 'waiting') view.waiting(host, `${gate.step.gate!.text}?`)
        if (!(await gate.opened)) {
          run.heldAt = step.gate
          view.held(host, `not ${step.title}: ${gate.why}`)
          ended(i, gate.why)
          return
        }
      }
      // Asked to stop: checked once the step has its slot, right before it begins (with fewer
      // forks than hosts it may wait for one), so nothing starts after the request.
      let started = new Date()
      try {
        const r = await limit(async () => {
          if (o.signal?.aborted) return undefined
          started = new Date()
          view.begin(host, step.key)
          const beat = heartbeat((text) => view.update(host, text))
          try {
            return await step.run(host, beat)
          } finally {
            beat.stop()
          }
        })
        if (!r) {
          run.interrupted = true
          view.held(host, `not ${step.title}: the run was asked to stop`)
          ended(i, 'the run was asked to stop')
          return
        }
        journal.add(step.key, host, started, r.skipped ? 'skipped' : 'ok', r.text, r.facts)
        view.done(host, step.key, r.text)
        run.done.push(step.key)
      } catch (error) {
        const text = oneLine(error)
        journal.add(step.key, host, started, 'failed', text)
        view.fail(host, step.key, text)
        run.failed = { step: step.key, error }
        ended(i, `${host} failed at ${step.key}`)
        return
      }
      finished(host, i)
    }
  }))

  const failed = [...runs].flatMap(([host, r]) => (r.failed ? [{ host, step: r.failed.step, error: r.failed.error }] : []))
  const interrupted = [...runs.values()].some((r) => r.interrupted)
  const through = Math.min(...[...runs.values()].map((r) => r.done.length)) - 1
  const held = [...runs.values()].filter((r) => r.heldAt || r.interrupted).length
  await view.end(failed.length || held ? [
    failed.length ? `${failed.map((f) => `${f.host} failed at ${f.step}`).join(', ')}` : '',
    held ? `${held} of ${hosts.length} host(s) held back${interrupted ? ' (asked to stop)' : ''}` : '',
  ].filter(Boolean).join('; ') : undefined)
  return { hosts: runs, failed, interrupted, allThrough: through >= 0 ? steps[through].key : undefined }
}


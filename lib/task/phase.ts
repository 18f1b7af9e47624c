// Runs one phase on many hosts at once (at most `forks` at a time), records each
// host's outcome in the journal and shows it through the UI. Every host always
// ends done or failed, so the view never waits forever.
import pLimit from 'p-limit'
import { formatError } from '../errors.ts'
import type { Journal } from './journal.ts'
import type { PhaseView, Ui } from './ui.ts'

export interface HostWork<T> {
  host: string
  /** Resolves with the value and a short line for the UI; `skip` marks work already done. */
  run: (view: { update(text: string): void }) => Promise<{ value: T; text: string; skipped?: boolean }>
}

export type HostOutcome<T> = { host: string; ok: true; value: T } | { host: string; ok: false; error: unknown }

export interface PhaseResult<T> {
  outcomes: HostOutcome<T>[]
  failed: Array<{ host: string; error: unknown }>
  values: Map<string, T>
}

export async function runPhase<T>(
  ui: Ui,
  journal: Journal,
  key: string,
  title: string,
  work: HostWork<T>[],
  forks: number,
): Promise<PhaseResult<T>> {
  const view: PhaseView = ui.phase(title, work.map((w) => w.host))
  const limit = pLimit(Math.max(1, forks))
  const outcomes = await Promise.all(
    work.map((w) =>
      limit(async (): Promise<HostOutcome<T>> => {
        const started = new Date()
        const beat = heartbeat((text) => view.update(w.host, text))
        try {
          const r = await w.run(beat)
          journal.add(key, w.host, started, r.skipped ? 'skipped' : 'ok', r.text)
          view.done(w.host, r.text)
          return { host: w.host, ok: true, value: r.value }
        } catch (error) {
          const text = oneLine(error)
          journal.add(key, w.host, started, 'failed', text)
          view.fail(w.host, text)
          return { host: w.host, ok: false, error }
        } finally {
          beat.stop()
        }
      }),
    ),
  )
  const failed = outcomes.filter((o): o is Extract<HostOutcome<T>, { ok: false }> => !o.ok)
  await view.end(failed.length ? `${failed.length} of ${work.length} host(s) failed` : undefined)
  const values = new Map<string, T>()
  for (const o of outcomes) if (o.ok) values.set(o.host, o.value)
  return { outcomes, failed, values }
}

/** An error as the one line a task list shows (up to three lines of it, joined). */
export function oneLine(err: unknown): string {
  const text = err instanceof Error && 'where' in err ? (err as Error).message : formatError(err)
  return text.split('\n').filter(Boolean).slice(0, 3).join(' | ')
}

/** After this long without a word from a host's running step, its row says it still runs. */
export const QUIET_MS = 10_000

/**
 * A host's status updates, watched: a step that goes quiet for `quietMs` (no
 * update) gets its last status again with how long the step has taken (or
 * "still running" when it said nothing yet), and again every `quietMs`. A step
 * stuck on one host (a hung disk) then shows as that host's step running on, in
 * the task list and in CI's lines, not as a silent run; a status a throttled
 * line dropped is shown again. Steps that report their own progress (a copy)
 * are not interrupted by it.
 */
export function heartbeat(update: (text: string) => void, quietMs = QUIET_MS): { update(text: string): void; stop(): void } {
  const t0 = Date.now()
  let last = t0
  let said = ''
  const timer = setInterval(() => {
    const now = Date.now()
    if (now - last < quietMs) return
    last = now
    const secs = Math.round((now - t0) / 1000)
    update(said ? `${said} (${secs} s so far)` : `still running, ${secs} s so far`)
  }, Math.min(1000, quietMs))
  timer.unref()
  return {
    update: (text) => {
      last = Date.now()
      said = text
      update(text)
    },
    stop: () => clearInterval(timer),
  }
}

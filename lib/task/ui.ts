// How a run shows itself. The phases' logic only reports events (a host's status
// changed, a host finished); a renderer turns them into a live listr2 task list
// on a terminal, or into plain host-prefixed lines for CI and pipes.
import { Listr, ListrLogger, type ListrTaskWrapper } from 'listr2'

export interface PhaseView {
  /** A host's live status (progress, state); lines mode throttles these. */
  update(host: string, text: string): void
  /** The host finished this phase. */
  done(host: string, text: string): void
  fail(host: string, text: string): void
  /** Every host finished; `summary` describes a failed phase. */
  end(failed?: string): Promise<void>
}

/** What a pipeline view is told of its steps (lib/task/pipeline.ts). */
export interface StepInfo {
  key: string
  title: string
  /** The gate before it, if any: what must hold everywhere first. */
  gate?: string
}

/** Each host going through its steps on its own, held only at gates. */
export interface PipelineView {
  /** The host starts a step (before the step's first remote command). */
  begin(host: string, step: string): void
  /** The host's live status within its step; lines mode throttles these. */
  update(host: string, text: string): void
  done(host: string, step: string, text: string): void
  fail(host: string, step: string, text: string): void
  /** The host waits at a gate. */
  waiting(host: string, text: string): void
  /** The host ends without its next step (a gate closed, or the run was asked to stop). */
  held(host: string, text: string): void
  /** A gate opened (every host finished what it needs) or closed. */
  gate(text: string, open: boolean): void
  /** Every host ended; `failed` describes what went wrong. */
  end(failed?: string): Promise<void>
}

export interface Ui {
  phase(title: string, hosts: string[]): PhaseView
  /** One view for many steps per host that overlap across hosts. */
  pipeline(title: string, hosts: string[], steps: StepInfo[]): PipelineView
  /** A line outside any phase: notes, warnings. */
  info(text: string): void
  warn(text: string): void
}

export interface UiOptions {
  /** Live task list when true; plain lines otherwise. Default: stdout is a TTY and CI is unset. */
  tty?: boolean
  /** Minimum time between two progress lines for one host in lines mode. Default 2000 ms. */
  throttleMs?: number
  out?: NodeJS.WritableStream
}

export function createUi(options: UiOptions = {}): Ui {
  const tty = options.tty ?? (Boolean(process.stdout.isTTY) && !process.env.CI)
  return tty ? new ListrUi(options.out ?? process.stdout) : new LineUi(options.out ?? process.stdout, options.throttleMs ?? 2000)
}

/** Plain lines: `[etcd1] copy: 48% 61 MiB of 128 MiB, 210 MiB/s`. */
export class LineUi implements Ui {
  constructor(private readonly out: NodeJS.WritableStream, private readonly throttleMs: number) {}

  phase(title: string, hosts: string[]): PhaseView {
    const t0 = Date.now()
    this.out.write(`== ${title} (${hosts.length} host${hosts.length === 1 ? '' : 's'})\n`)
    const last = new Map<string, number>()
    const line = (host: string, text: string) => this.out.write(`[${host}] ${text}\n`)
    return {
      update: (host, text) => {
        const now = Date.now()
        if (now - (last.get(host) ?? 0) < this.throttleMs) return
        last.set(host, now)
        line(host, text)
      },
      done: (host, text) => line(host, `ok: ${text}`),
      fail: (host, text) => line(host, `FAILED: ${text}`),
      end: async (failed) => {
        const secs = ((Date.now() - t0) / 1000).toFixed(1)
        this.out.write(failed ? `== ${title}: FAILED after ${secs} s: ${failed}\n` : `== ${title}: done in ${secs} s\n`)
      },
    }
  }

  /** `[etcd1] restore ok in 0.6 s: …`, and a `--` line when a gate opens. */
  pipeline(title: string, hosts: string[], steps: StepInfo[]): PipelineView {
    const t0 = Date.now()
    const flow = steps.map((s) => `${s.gate ? `[${s.gate}] ` : ''}${s.key}`).join(' → ')
    this.out.write(`== ${title} (${hosts.length} host${hosts.length === 1 ? '' : 's'}): ${flow}\n`)
    const current = new Map<string, { step: string; at: number }>()
    const last = new Map<string, number>()
    const line = (host: string, text: string) => this.out.write(`[${host}] ${text}\n`)
    const took = (host: string) => ((Date.now() - (current.get(host)?.at ?? t0)) / 1000).toFixed(1)
    return {
      begin: (host, step) => current.set(host, { step, at: Date.now() }),
      update: (host, text) => {
        const now = Date.now()
        if (now - (last.get(host) ?? 0) < this.throttleMs) return
        last.set(host, now)
        line(host, `${current.get(host)?.step ?? ''}: ${text}`)
      },
      done: (host, step, text) => line(host, `${step} ok in ${took(host)} s: ${text}`),
      fail: (host, step, text) => line(host, `${step} FAILED after ${took(host)} s: ${text}`),
      waiting: () => {},
      held: (host, text) => line(host, `held: ${text}`),
      gate: (text, open) => this.out.write(`-- ${open ? '' : 'closed: '}${text}\n`),
      end: async (failed) => {
        const secs = ((Date.now() - t0) / 1000).toFixed(1)
        this.out.write(failed ? `== ${title}: FAILED after ${secs} s: ${failed}\n` : `== ${title}: done in ${secs} s\n`)
      },
    }
  }

  info(text: string): void {
    this.out.write(`${text}\n`)
  }

  warn(text: string): void {
    this.out.write(`warning: ${text}\n`)
  }
}

type Deferred<T = void> = { resolve: (v: T) => void; reject: (e: Error) => void; promise: Promise<T> }
/** A promise and the functions that settle it (a rejection nobody awaits is not reported). */
function deferred<T = void>(): Deferred<T> {
  let resolve!: (v: T) => void
  let reject!: (e: Error) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  promise.catch(() => {})
  return { resolve, reject, promise }
}

/**
 * A row per host under `parent`, and a last task without a title that fails
 * the parent once `verdict` names a failure. A host's row failing must not end
 * the others (exitOnError false, per row), and listr2 ticks a parent whose
 * subtasks failed that way: the verdict is what marks it failed.
 */
function hostRows(parent: ListrTaskWrapper<any, any, any>, hosts: string[], row: (host: string, t: ListrTaskWrapper<any, any, any>) => Promise<void>, verdict: Promise<string | undefined>) {
  return parent.newListr([
    ...hosts.map((host) => ({ title: host, exitOnError: false, task: (_c: unknown, t: ListrTaskWrapper<any, any, any>) => row(host, t) })),
    {
      task: async () => {
        const failed = await verdict
        if (failed) throw new Error(failed)
      },
    },
  ], { concurrent: true })
}

/** A listr2 task list per phase: the phase as parent, a row per host. */
export class ListrUi implements Ui {
  constructor(private readonly out: NodeJS.WritableStream) {}

  phase(title: string, hosts: string[]): PhaseView {
    const t0 = Date.now()
    const waits = new Map(hosts.map((h) => [h, deferred()]))
    const tasks = new Map<string, ListrTaskWrapper<any, any, any>>()
    const titles = new Map<string, string>()
    let parentTask: ListrTaskWrapper<any, any, any> | undefined
    let finished = 0
    let failures = 0
    const verdict = deferred<string | undefined>()
    const setTitle = (host: string, text: string) => {
      titles.set(host, `${host}  ${text}`)
      const t = tasks.get(host)
      if (t) t.title = titles.get(host)!
    }
    // The parent's title carries the phase's outcome once the last host is done.
    const settle = (host: string, ok: boolean, text: string) => {
      finished++
      if (!ok) failures++
      if (finished === hosts.length && parentTask) {
        const secs = ((Date.now() - t0) / 1000).toFixed(1)
        parentTask.title = failures ? `${title}: ${failures} of ${hosts.length} failed` : `${title} (${secs} s)`
      }
      if (ok) waits.get(host)!.resolve()
      else waits.get(host)!.reject(new Error(text))
    }
    const list = new Listr(
      [
        {
          title,
          // Subtasks must be returned, not run: a nested run() would take over the terminal twice.
          task: (_ctx, parent) => {
            parentTask = parent
            return hostRows(parent, hosts, async (host, t) => {
              tasks.set(host, t)
              if (titles.has(host)) t.title = titles.get(host)!
              await waits.get(host)!.promise
            }, verdict.promise)
          },
        },
      ],
      {
        exitOnError: false,
        renderer: 'default',
        rendererOptions: { collapseSubtasks: false, collapseErrors: false, logger: new ListrLogger({ toStderr: [] }) } as never,
      },
    )
    const running = list.run().catch(() => {})
    return {
      update: setTitle,
      done: (host, text) => {
        setTitle(host, text)
        settle(host, true, text)
      },
      fail: (host, text) => settle(host, false, text),
      end: async (failed) => {
        verdict.resolve(failed)
        await running
      },
    }
  }

  /**
   * One task list for the whole pipeline: the title as parent, a row per host
   * that shows the step it is in (and its progress) or the gate it waits at,
   * and at the end how long each of its steps took.
   */
  pipeline(title: string, hosts: string[], steps: StepInfo[]): PipelineView {
    const t0 = Date.now()
    const lastStep = steps[steps.length - 1]?.key
    const titleOf = new Map(steps.map((s) => [s.key, s.title]))
    const waits = new Map(hosts.map((h) => [h, deferred()]))
    const tasks = new Map<string, ListrTaskWrapper<any, any, any>>()
    const rows = new Map<string, string>()
    const times = new Map(hosts.map((h) => [h, [] as string[]]))
    const current = new Map<string, { step: string; at: number }>()
    const skips = new Map<string, string>()
    let parentTask: ListrTaskWrapper<any, any, any> | undefined
    let gateLine = ''
    const verdict = deferred<string | undefined>()
    const show = (host: string, text: string) => {
      rows.set(host, `${host}  ${text}`)
      const t = tasks.get(host)
      if (t) t.title = rows.get(host)!
    }
    const showParent = () => {
      if (parentTask) parentTask.title = gateLine ? `${title}: ${gateLine}` : title
    }
    const list = new Listr(
      [
        {
          title,
          task: (_ctx, parent) => {
            parentTask = parent
            showParent()
            return hostRows(parent, hosts, async (host, t) => {
              tasks.set(host, t)
              if (rows.has(host)) t.title = rows.get(host)!
              await waits.get(host)!.promise
              if (skips.has(host)) t.skip(skips.get(host))
            }, verdict.promise)
          },
        },
      ],
      {
        exitOnError: false,
        renderer: 'default',
        rendererOptions: { collapseSubtasks: false, collapseErrors: false, collapseSkips: false, logger: new ListrLogger({ toStderr: [] }) } as never,
      },
    )
    const running = list.run().catch(() => {})
    const secs = (host: string) => ((Date.now() - (current.get(host)?.at ?? t0)) / 1000).toFixed(1)
    return {
      begin: (host, step) => {
        current.set(host, { step, at: Date.now() })
        show(host, `${titleOf.get(step) ?? step}…`)
      },
      update: (host, text) => show(host, `${titleOf.get(current.get(host)?.step ?? '') ?? ''}: ${text}`),
      done: (host, step, text) => {
        times.get(host)!.push(`${step} ${secs(host)} s`)
        if (step !== lastStep) return show(host, `${step} ✔ ${text}`)
        show(host, `${text}  (${times.get(host)!.join(', ')})`)
        waits.get(host)!.resolve()
      },
      fail: (host, step, text) => {
        show(host, `${step} failed`)
        waits.get(host)!.reject(new Error(`${step}: ${text}`))
      },
      waiting: (host, text) => show(host, `${times.get(host)!.join(', ')}; waiting: ${text}`),
      held: (host, text) => {
        skips.set(host, `${host}  ${text}`)
        waits.get(host)!.resolve()
      },
      gate: (text, open) => {
        gateLine = open ? text : `closed: ${text}`
        showParent()
      },
      end: async (failed) => {
        gateLine = failed ? `FAILED: ${failed}` : `done in ${((Date.now() - t0) / 1000).toFixed(1)} s`
        showParent()
        verdict.resolve(failed)
        await running
      },
    }
  }

  info(text: string): void {
    this.out.write(`${text}\n`)
  }

  warn(text: string): void {
    this.out.write(`⚠ ${text}\n`)
  }
}

/** Shows nothing but warnings (to `warnTo`, if given): for steps nested in a larger run. */
export function silentUi(warnTo?: Ui): Ui {
  return {
    phase: () => ({ update() {}, done() {}, fail() {}, end: async () => {} }),
    pipeline: () => ({ begin() {}, update() {}, done() {}, fail() {}, waiting() {}, held() {}, gate() {}, end: async () => {} }),
    info() {},
    warn: (text) => warnTo?.warn(text),
  }
}

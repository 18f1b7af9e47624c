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

export interface Ui {
  phase(title: string, hosts: string[]): PhaseView
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

  info(text: string): void {
    this.out.write(`${text}\n`)
  }

  warn(text: string): void {
    this.out.write(`warning: ${text}\n`)
  }
}

type Deferred = { resolve: () => void; reject: (e: Error) => void; promise: Promise<void> }
function deferred(): Deferred {
  let resolve!: () => void
  let reject!: (e: Error) => void
  const promise = new Promise<void>((res, rej) => {
    resolve = res
    reject = rej
  })
  promise.catch(() => {})
  return { resolve, reject, promise }
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
            return parent.newListr(
              hosts.map((host) => ({
                title: host,
                task: async (_c: unknown, t: ListrTaskWrapper<any, any, any>) => {
                  tasks.set(host, t)
                  if (titles.has(host)) t.title = titles.get(host)!
                  await waits.get(host)!.promise
                },
              })),
              { concurrent: true, exitOnError: false },
            )
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
      end: async () => {
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
    info() {},
    warn: (text) => warnTo?.warn(text),
  }
}

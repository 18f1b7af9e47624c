// The per-host step loop (lib/task/pipeline.ts): hosts move on independently,
// gates hold every host until all finished the step they name, a failure or a
// stop closes the gates it concerns, forks bound the steps running at once.
import { describe, expect, it, vi } from 'vitest'
import { runPipeline, type Step } from '../../lib/task/pipeline.ts'
import { Journal } from '../../lib/task/journal.ts'
import { LineUi } from '../../lib/task/ui.ts'

const tick = () => new Promise((r) => setTimeout(r, 5))

function ui() {
  let out = ''
  const u = new LineUi({ write: (s: string) => ((out += s), true) } as never, 0)
  return Object.assign(u, { text: () => out })
}

/** Steps that log `host:step` when they start and end; `hold` keeps one host's step until released. */
function steps(keys: Array<string | { key: string; gate?: string }>, log: string[], o: { fail?: string; hold?: Map<string, Promise<void>> } = {}): Step[] {
  return keys.map((k) => {
    const { key, gate } = typeof k === 'string' ? { key: k, gate: undefined } : k
    return {
      key,
      title: `do ${key}`,
      gate: gate ? { after: gate, text: `every host did ${gate}` } : undefined,
      run: async (host) => {
        log.push(`${host}:${key}`)
        await (o.hold?.get(`${host}:${key}`) ?? tick())
        if (o.fail === `${host}:${key}`) throw new Error(`${key} broke on ${host}`)
        log.push(`${host}:${key}.`)
        return { text: `${key} done` }
      },
    }
  })
}

function deferred() {
  let resolve!: () => void
  const promise = new Promise<void>((r) => (resolve = r))
  return { promise, resolve }
}

describe('runPipeline', () => {
  it('moves each host to its next step as soon as its own previous step is done', async () => {
    const log: string[] = []
    const slow = deferred()
    const hold = new Map([['b:copy', slow.promise]])
    const done = runPipeline(ui(), new Journal(), 'test', ['a', 'b'], steps(['copy', 'restore'], log, { hold }), { forks: 2 })
    await tick(); await tick(); await tick()
    // b still copies; a already restored.
    expect(log).toContain('a:restore.')
    expect(log).not.toContain('b:copy.')
    slow.resolve()
    const r = await done
    expect(r.failed).toEqual([])
    expect(r.allThrough).toBe('restore')
  })

  it('holds every host at a gate until all hosts finished the step it names', async () => {
    const log: string[] = []
    const slow = deferred()
    const hold = new Map([['b:restore', slow.promise]])
    const u = ui()
    const done = runPipeline(u, new Journal(), 'test', ['a', 'b'], steps(['restore', { key: 'stop', gate: 'restore' }], log, { hold }), { forks: 2 })
    for (let i = 0; i < 5; i++) await tick()
    expect(log).toContain('a:restore.')
    expect(log).not.toContain('a:stop')
    slow.resolve()
    await done
    expect(log.indexOf('b:restore.')).toBeLessThan(log.indexOf('a:stop'))
    expect(u.text()).toMatch(/^-- every host did restore; next: do stop$/m)
  })

  it('a host failing before a gate closes it: nobody takes the gated step, the others are held', async () => {
    const log: string[] = []
    const journal = new Journal()
    const u = ui()
    const r = await runPipeline(u, journal, 'test', ['a', 'b', 'c'], steps(['copy', 'restore', { key: 'stop', gate: 'restore' }], log, { fail: 'b:restore' }), { forks: 3 })
    expect(r.failed.map((f) => `${f.host}:${f.step}`)).toEqual(['b:restore'])
    expect(log.filter((l) => l.endsWith(':stop'))).toEqual([])
    expect(r.hosts.get('a')!.heldAt?.after).toBe('restore')
    expect(r.hosts.get('a')!.done).toEqual(['copy', 'restore'])
    expect(journal.records.map((x) => `${x.host}:${x.phase}:${x.outcome}`).sort()).toEqual([
      'a:copy:ok', 'a:restore:ok', 'b:copy:ok', 'b:restore:failed', 'c:copy:ok', 'c:restore:ok',
    ])
    expect(u.text()).toMatch(/^\[b\] restore FAILED after [\d.]+ s: .*restore broke on b/m)
    expect(u.text()).toMatch(/^\[a\] held: not do stop: b failed at restore$/m)
    expect(u.text()).toMatch(/^== test: FAILED after [\d.]+ s: b failed at restore; 2 of 3 host\(s\) held back$/m)
  })

  it('a host failing after the step a gate names does not close it', async () => {
    const log: string[] = []
    const r = await runPipeline(ui(), new Journal(), 'test', ['a', 'b'], steps(['stop', 'swap', { key: 'start', gate: 'stop' }], log, { fail: 'b:swap' }), { forks: 2 })
    expect(r.failed.map((f) => `${f.host}:${f.step}`)).toEqual(['b:swap'])
    expect(log).toContain('a:start.')
    expect(log).not.toContain('b:start')
    expect(r.allThrough).toBe('stop')
  })

  it('asked to stop: running steps finish, no host starts a new one', async () => {
    const log: string[] = []
    const ctl = new AbortController()
    const slow = deferred()
    const hold = new Map([['a:stop', slow.promise]])
    const done = runPipeline(ui(), new Journal(), 'test', ['a', 'b'], steps(['stop', 'swap', 'start'], log, { hold }), { forks: 2, signal: ctl.signal })
    for (let i = 0; i < 6; i++) await tick()
    ctl.abort()
    slow.resolve()
    const r = await done
    expect(r.interrupted).toBe(true)
    expect(log).toContain('a:stop.')
    expect(log).not.toContain('a:swap')
    expect(r.hosts.get('a')!.interrupted).toBe(true)
  })

  it('asked to stop as a step begins on one host: the hosts released at the same moment start nothing', async () => {
    const log: string[] = []
    const ctl = new AbortController()
    const base = ui()
    const hooked = Object.assign(Object.create(base), {
      pipeline: (...args: Parameters<typeof base.pipeline>) => {
        const v = base.pipeline(...args)
        return { ...v, begin: (h: string, st: string) => { if (st === 'stop') ctl.abort(); v.begin(h, st) } }
      },
    })
    const r = await runPipeline(hooked, new Journal(), 'test', ['a', 'b', 'c'], steps(['restore', { key: 'stop', gate: 'restore' }, 'swap'], log), { forks: 3, signal: ctl.signal })
    expect(log.filter((l) => l.endsWith(':stop'))).toHaveLength(1)
    expect(log.some((l) => l.endsWith(':swap'))).toBe(false)
    expect(r.interrupted).toBe(true)
  })

  it('with fewer forks than hosts, runs at most that many steps at once, and gates do not deadlock', async () => {
    let running = 0
    let most = 0
    const step = (key: string, gate?: string): Step => ({
      key,
      title: key,
      gate: gate ? { after: gate, text: gate } : undefined,
      run: async () => {
        most = Math.max(most, ++running)
        await tick()
        running--
        return { text: 'ok' }
      },
    })
    const r = await runPipeline(ui(), new Journal(), 'test', ['a', 'b', 'c', 'd', 'e'], [step('copy'), step('restore'), step('stop', 'restore'), step('start', 'stop')], { forks: 2 })
    expect(r.failed).toEqual([])
    expect(r.allThrough).toBe('start')
    expect(most).toBe(2)
  })

  it('until: every host stops after that step', async () => {
    const log: string[] = []
    const r = await runPipeline(ui(), new Journal(), 'test', ['a', 'b'], steps(['copy', { key: 'stop', gate: 'copy' }, 'start'], log), { forks: 2, until: 'stop' })
    expect(r.allThrough).toBe('stop')
    expect(log.some((l) => l.endsWith(':start'))).toBe(false)
  })

  it('refuses a gate that names a later step', async () => {
    await expect(runPipeline(ui(), new Journal(), 'test', ['a'], steps([{ key: 'stop', gate: 'start' }, 'start'], []), { forks: 1 })).rejects.toThrow(/gate of stop: start is not an earlier step/)
  })
})

describe('runPipeline on the live task list (listr2)', () => {
  it('ends when hosts fail or are held at a gate, as when all finish: the view never waits forever', async () => {
    const { ListrUi } = await import('../../lib/task/ui.ts')
    const sink = { write: () => true } as never
    const ok = await runPipeline(new ListrUi(sink), new Journal(), 'test', ['a', 'b'], steps(['copy', { key: 'stop', gate: 'copy' }], []), { forks: 2 })
    expect(ok.allThrough).toBe('stop')
    const broken = await runPipeline(new ListrUi(sink), new Journal(), 'test', ['a', 'b', 'c'], steps(['copy', { key: 'stop', gate: 'copy' }, 'start'], [], { fail: 'b:copy' }), { forks: 2 })
    expect(broken.failed.map((f) => f.host)).toEqual(['b'])
    expect([...broken.hosts.values()].filter((h) => h.heldAt).length).toBe(2)
  }, 10_000)
})

describe('a step that goes quiet', () => {
  it('is said to be still running every 10 s, on its own host\'s row, with what it last said; one that reports progress is not', async () => {
    vi.useFakeTimers()
    try {
      const u = ui()
      const stuck = deferred()
      const quietStep: Step = { key: 'restore', title: 'restore', run: async () => { await stuck.promise; return { text: 'restored' } } }
      const saidOnce: Step = { key: 'restore', title: 'restore', run: async (_h, view) => { view.update('waiting for another run: host=x pid=1'); await stuck.promise; return { text: 'restored' } } }
      const talking: Step = {
        key: 'copy', title: 'copy',
        run: async (_host, view) => {
          for (let i = 1; i <= 5; i++) {
            await new Promise((r) => setTimeout(r, 5000))
            view.update(`${i * 20}%`)
          }
          return { text: 'copied' }
        },
      }
      const done = runPipeline(u, new Journal(), 'test', ['a', 'b', 'c'], [{ ...quietStep, run: (h, v) => (h === 'a' ? quietStep.run(h, v) : h === 'b' ? talking.run(h, v) : saidOnce.run(h, v)) }], { forks: 3 })
      await vi.advanceTimersByTimeAsync(25_500)
      stuck.resolve()
      await vi.advanceTimersByTimeAsync(100)
      await done
      const text = u.text()
      expect(text).toMatch(/\[a\] restore: still running, 10 s so far\n/)
      expect(text).toMatch(/\[a\] restore: still running, 20 s so far\n/)
      expect(text).not.toMatch(/\[a\] restore: still running, 30 s/)
      expect(text).not.toMatch(/\[b\].*still running/)
      expect(text).toMatch(/\[b\] restore: 100%/)
      // A step that said where it waits keeps saying so, with its time.
      expect(text).toMatch(/\[c\] restore: waiting for another run: host=x pid=1 \(10 s so far\)\n/)
      expect(text).toMatch(/\[c\] restore: waiting for another run: host=x pid=1 \(20 s so far\)\n/)
    } finally {
      vi.useRealTimers()
    }
  })
})

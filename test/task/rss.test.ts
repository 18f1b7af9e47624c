import { describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { ownPeakRssBytes, parseVmHwm } from '../../lib/task/rss.ts'

describe('peak RSS', () => {
  it('reads VmHWM from /proc/PID/status', () => {
    expect(parseVmHwm('Name:\tnode\nVmPeak:\t 1000 kB\nVmHWM:\t   125440 kB\nVmRSS:\t 120000 kB\n')).toBe(125440 * 1024)
    expect(parseVmHwm('Name:\tnode\n')).toBeUndefined()
  })

  it('is the process\'s own, not its larger parent\'s (which ru_maxrss inherits)', () => {
    // A parent holding 200 MiB starts a child that measures itself both ways.
    const repo = fileURLToPath(new URL('../../', import.meta.url))
    const rss = fileURLToPath(new URL('../../lib/task/rss.ts', import.meta.url))
    const child = `import('${rss}').then((m) => console.log('rss', m.ownPeakRssBytes(), process.resourceUsage().maxRSS * 1024))`
    const parent = `const big = Buffer.alloc(200 * 2 ** 20, 1); const r = require('child_process').spawnSync(process.execPath, ['--import', 'tsx', '-e', ${JSON.stringify(child)}], { encoding: 'utf8', timeout: 30000 }); process.stdout.write(r.stdout); process.stderr.write(r.stderr); big[0]`
    const run = spawnSync(process.execPath, ['-e', parent], { encoding: 'utf8', cwd: repo, timeout: 60_000 })
    const line = /^rss (\d+) (\d+)$/m.exec(run.stdout)
    expect(line, run.stdout + run.stderr).not.toBeNull()
    const [own, inherited] = [Number(line![1]), Number(line![2])]
    expect(own, run.stdout).toBeLessThan(200 * 2 ** 20)
    expect(own, run.stdout).toBeLessThan(inherited)
    expect(ownPeakRssBytes()).toBeGreaterThan(10 * 2 ** 20)
  })
})

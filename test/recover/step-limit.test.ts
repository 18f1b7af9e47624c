// How long a changing step may run on a host before it is ended, and the flag
// that sets it. The end itself is tested on the lab (faults-interrupt) and on a
// local loop (ssh/session).
import { spawnSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { STEP_LIMIT, stepLimitMs } from '../../lib/recover/recover.ts'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

describe('stepLimitMs', () => {
  it('gives stop, swap and start 2 min whatever the snapshot', () => {
    for (const step of ['stop', 'swap', 'start'] as const) {
      expect(stepLimitMs(step, 0)).toBe(120_000)
      expect(stepLimitMs(step, 8 * 2 ** 30)).toBe(120_000)
    }
  })

  it('gives the restore 1 s more per 5 MB of snapshot, rounded up', () => {
    expect(stepLimitMs('restore', 0)).toBe(STEP_LIMIT.baseMs)
    expect(stepLimitMs('restore', 1)).toBe(121_000)
    expect(stepLimitMs('restore', 5e6)).toBe(121_000)
    expect(stepLimitMs('restore', 2 ** 30)).toBe(120_000 + 215_000)
  })

  it('takes --step-timeout as the base: a longer one never shortens a large snapshot\'s restore', () => {
    expect(stepLimitMs('stop', 0, 600_000)).toBe(600_000)
    expect(stepLimitMs('start', 2 ** 30, 30_000)).toBe(30_000)
    expect(stepLimitMs('restore', 2 ** 30, 30_000)).toBe(30_000 + 215_000)
    expect(stepLimitMs('restore', 4 * 2 ** 30, 300_000)).toBeGreaterThan(stepLimitMs('restore', 4 * 2 ** 30))
  })
})

describe('--step-timeout', () => {
  it('refuses what is not a duration, naming the flag, before reading anything (exit 2)', () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'scripts/recover.mjs'), '--inventory', '/nonexistent/hosts.ini', '--snapshot', '/nonexistent.db', '--yes', '--step-timeout', 'soon'], { cwd: tmpdir(), encoding: 'utf8' })
    expect(r.status).toBe(2)
    expect(r.stdout + r.stderr).toMatch(/--step-timeout takes seconds \("120", "90s" or "2m"\), not "soon"/)
  })

  it('is in --help', () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'scripts/recover.mjs'), '--help'], { cwd: tmpdir(), encoding: 'utf8' })
    expect(r.status).toBe(0)
    expect(r.stdout).toMatch(/--step-timeout SECONDS/)
  })
})

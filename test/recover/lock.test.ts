// Which lock holders a run may take over without asking: only runs from this
// machine that are certainly over. Another machine's holder is never stale.
import { describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { hostname } from 'node:os'
import { ownerLine, staleHolder } from '../../lib/recover/lock.ts'

describe('staleHolder', () => {
  const since = 'since=2026-11-25T00:00:00.000Z cmd=x'
  it('is true for a process of this machine that is gone', () => {
    const gone = Number(spawnSync('/bin/sh', ['-c', 'echo $$']).stdout.toString().trim())
    expect(staleHolder(`host=${hostname()} pid=${gone} ${since}`)).toBe(true)
  })
  it('is true for this process when no run of it holds that lock', () => {
    expect(staleHolder(ownerLine())).toBe(true)
  })
  it('is false for a process of this machine that runs', () => {
    expect(staleHolder(`host=${hostname()} pid=${process.ppid} ${since}`)).toBe(false)
  })
  it('is false for another machine, and for a line it cannot read', () => {
    expect(staleHolder(`host=laptop-of-someone-else pid=1 ${since}`)).toBe(false)
    expect(staleHolder('')).toBe(false)
    expect(staleHolder('garbage')).toBe(false)
  })
})

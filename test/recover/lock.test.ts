// Which lock holders a run may take over without asking: only runs from this
// machine that are certainly over. Another machine's holder is never stale.
import { describe, expect, it } from 'vitest'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { lockFile, lockScript, ownerLine, staleHolder } from '../../lib/recover/lock.ts'
import { sh } from '../../lib/shell/sh.ts'

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

describe('taking over a lock this machine knows is stale', () => {
  it('ends its holder and what the holder started in its group, though the holder leads no group (under sudo), and a stopped one too', async () => {
    const dataDir = join(mkdtempSync(join(tmpdir(), 'lock-test-')), 'etcd')
    const file = ['/run/lock', '/tmp'].map((d) => join(d, lockFile(dataDir))).find((f) => existsSync(dirname(f)))!
    const stopped = join(dirname(dataDir), 'stopped.pid')
    // The holder's session runs, as its preflight, a process that stops itself (a writer on a hung disk).
    const holder = lockScript(dataDir, 'owner-A', 0, '', sh`sh -c 'echo $$ > "$1"; kill -STOP $$' sh ${stopped}`)
    // As sudo runs it: a parent that stays, the lock's shell its child in the parent's group.
    const sudo = spawn('/bin/sh', ['-c', 'sh -c "$1"; echo parent-went-on', 'sh', holder.text], { detached: true, stdio: ['pipe', 'pipe', 'pipe'] })
    let out = ''
    sudo.stdout!.on('data', (d: Buffer) => { out += d.toString() })
    try {
      for (let i = 0; i < 300 && !(out.includes('locked') && existsSync(stopped) && readFileSync(stopped, 'utf8').trim()); i++) await new Promise((r) => setTimeout(r, 50))
      const pid = Number(readFileSync(stopped, 'utf8'))
      expect(readFileSync(`/proc/${pid}/stat`, 'utf8')).toMatch(/\) T /)
      const taker = spawnSync('/bin/sh', ['-c', lockScript(dataDir, 'owner-B', 0, 'owner-A').text], { input: 'release\n', timeout: 20_000 })
      expect(taker.stdout.toString()).toMatch(/held-by=owner-A\n(.*\n)*stale=owner-A\nlocked\n/)
      // Ended (a zombie until whoever adopted it reaps it).
      const state = () => (existsSync(`/proc/${pid}/stat`) ? readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) (\S).*$/s, '$1') : 'gone')
      for (let i = 0; i < 200 && !['gone', 'Z'].includes(state()); i++) await new Promise((r) => setTimeout(r, 50))
      expect(state(), taker.stdout.toString() + taker.stderr.toString()).toMatch(/^(gone|Z)$/)
      // sudo itself is not the holder's to end: its child ended, it goes on.
      for (let i = 0; i < 300 && !out.includes('parent-went-on'); i++) await new Promise((r) => setTimeout(r, 50))
      expect(out).toMatch(/parent-went-on/)
    } finally {
      try { process.kill(-sudo.pid!, 'SIGKILL') } catch { /* gone */ }
      rmSync(file, { force: true })
      rmSync(dirname(dataDir), { recursive: true, force: true })
    }
  }, 60_000)
})

describe('taking over a lock, with another run waiting for it', () => {
  it('ends only the holder: a run that has the file open but waits (--wait-lock) is left alone', async () => {
    const dataDir = join(mkdtempSync(join(tmpdir(), 'lock-test-')), 'etcd')
    const file = ['/run/lock', '/tmp'].map((d) => join(d, lockFile(dataDir))).find((f) => existsSync(dirname(f)))!
    const holder = spawn('/bin/sh', ['-c', lockScript(dataDir, 'owner-A', 0, '').text], { detached: true, stdio: ['pipe', 'pipe', 'pipe'] })
    let held = ''
    holder.stdout!.on('data', (d: Buffer) => { held += d.toString() })
    const waiter = spawn('/bin/sh', ['-c', lockScript(dataDir, 'owner-W', 60, '').text], { detached: true, stdio: ['pipe', 'pipe', 'pipe'] })
    let waited = ''
    waiter.stdout!.on('data', (d: Buffer) => { waited += d.toString() })
    try {
      for (let i = 0; i < 300 && !(held.includes('locked') && waited.includes('held-by=owner-A')); i++) await new Promise((r) => setTimeout(r, 50))
      expect(waited).toMatch(/held-by=owner-A/)
      const taker = spawnSync('/bin/sh', ['-c', lockScript(dataDir, 'owner-B', 0, 'owner-A').text], { input: 'release\n', timeout: 20_000 })
      // Whichever of the two then got the lock, the waiting run was not ended by the takeover.
      expect(taker.stdout.toString()).toMatch(/held-by=owner-A/)
      const state = existsSync(`/proc/${waiter.pid}/stat`) ? readFileSync(`/proc/${waiter.pid}/stat`, 'utf8').replace(/^.*\) (\S).*$/s, '$1') : 'gone'
      expect(state, `${waited}\n${taker.stdout}`).toMatch(/^[SR]$/)
    } finally {
      for (const p of [holder, waiter]) try { process.kill(-p.pid!, 'SIGKILL') } catch { /* gone */ }
      rmSync(file, { force: true })
      rmSync(dirname(dataDir), { recursive: true, force: true })
    }
  }, 60_000)
})

describe('a run that finds the lock held', () => {
  it("names the holder even when it looks in the moment between the holder's flock and its name", () => {
    const dataDir = join(mkdtempSync(join(tmpdir(), 'lock-test-')), 'etcd')
    const file = ['/run/lock', '/tmp'].map((d) => join(d, lockFile(dataDir))).find((f) => existsSync(dirname(f)))!
    // A holder that takes the lock and writes its name half a second later.
    const holder = spawn('/bin/sh', ['-c', sh`exec 9>>${file}; flock 9; echo ready; sleep 0.5; echo owner-X > ${file}; sleep 30`.text], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] })
    try {
      const ready = spawnSync('/bin/sh', ['-c', sh`until flock -n ${file} true; [ $? -eq 1 ]; do sleep 0.05; done`.text], { timeout: 10_000 })
      expect(ready.status).toBe(0)
      const waiter = spawnSync('/bin/sh', ['-c', lockScript(dataDir, 'owner-W', 0, '').text], { timeout: 20_000 })
      expect(waiter.stdout.toString()).toMatch(/^held-by=owner-X$/m)
    } finally {
      try { process.kill(-holder.pid!, 'SIGKILL') } catch { /* gone */ }
      rmSync(file, { force: true })
      rmSync(dirname(dataDir), { recursive: true, force: true })
    }
  }, 30_000)
})

// Finding a member's etcd among a host's processes, here on this machine with
// stand-in processes named etcd (a copy of sleep): only the one whose data dir
// matches is found, whether given by flag or by ETCD_DATA_DIR.
import { afterAll, describe, expect, it } from 'vitest'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { copyFileSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { etcdArgs, findPidsScript, listenUrl, startCommand } from '../../lib/etcd/process.ts'

const dir = mkdtempSync(join(tmpdir(), 'fake-etcd-'))
const fake = join(dir, 'etcd')
copyFileSync('/bin/sleep', fake)
const children: ChildProcess[] = []
afterAll(() => children.forEach((c) => c.kill('SIGKILL')))

function run(env: Record<string, string>, ...args: string[]) {
  // `sleep 60 --data-dir X` would refuse its arguments, so the flag form uses `--`
  // after sleep's own; the scan reads argv, which is what matters.
  const c = spawn(fake, args, { env: { ...process.env, ...env }, stdio: 'ignore' })
  children.push(c)
  return c.pid!
}

const find = (dataDir: string) =>
  spawnSync('/bin/sh', ['-c', findPidsScript(dataDir, [65301, 65302]).text], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number)

describe('findPidsScript', () => {
  it('finds the etcd of this data dir only', async () => {
    const byEnv = run({ ETCD_DATA_DIR: join(dir, 'member-a') }, '60')
    const other = run({ ETCD_DATA_DIR: join(dir, 'events') }, '60')
    await new Promise((r) => setTimeout(r, 200))
    expect(find(join(dir, 'member-a'))).toEqual([byEnv])
    expect(find(`${join(dir, 'member-a')}/`)).toEqual([byEnv])
    expect(find(join(dir, 'events'))).toEqual([other])
    expect(find(join(dir, 'nothing'))).toEqual([])
  })

  it('prints nothing on stderr while processes come and go', () => {
    const r = spawnSync('/bin/sh', ['-c', `for i in 1 2 3 4 5; do (sleep 0.01 &) ; done; ${findPidsScript('/x', [1])}`], { encoding: 'utf8' })
    expect(r.status).toBe(0)
    expect(r.stderr).toBe('')
  })
})

describe('etcd process command lines', () => {
  it('listens on IP literals, and on every address for a host name', () => {
    expect(listenUrl('http://10.0.0.1:2380')).toBe('http://10.0.0.1:2380')
    expect(listenUrl('https://etcd1.example:2379')).toBe('https://0.0.0.0:2379')
  })

  it('adds loopback for local tools and bootstrap flags only for a new cluster', () => {
    const spec = { etcdBin: '/usr/bin/etcd', name: 'etcd1', dataDir: '/var/lib/etcd', peerUrl: 'http://10.0.0.1:2380', clientUrl: 'http://10.0.0.1:2379' }
    expect(etcdArgs(spec)).toContain('http://10.0.0.1:2379,http://127.0.0.1:2379')
    expect(etcdArgs(spec)).not.toContain('--initial-cluster-state')
    expect(etcdArgs({ ...spec, bootstrap: { initialCluster: 'etcd1=http://10.0.0.1:2380', token: 't' } })).toContain('--initial-cluster-state')
  })

  it('detaches with every descriptor redirected, so an SSH session returns at once', () => {
    const cmd = startCommand({ etcdBin: '/usr/bin/etcd', name: 'e1', dataDir: '/d', peerUrl: 'http://10.0.0.1:2380', clientUrl: 'http://10.0.0.1:2379' })
    expect(cmd.text).toMatch(/setsid -f .* >>\/var\/log\/etcd-rescue\/e1\.log 2>&1 <\/dev\/null$/)
    expect(spawnSync('/bin/sh', ['-n', '-c', cmd.text]).status).toBe(0)
  })
})

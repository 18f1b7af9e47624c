// The restore and upload scripts run here under dash (Debian's /bin/sh, what a
// remote host most likely runs) against the real etcdctl 3.4 and a real snapshot,
// in a temp dir: no SSH, no network, but the real commands and the real journal.
import { describe, expect, it, beforeEach } from 'vitest'
import { execFileSync, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, rmSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { memberPaths } from '../../lib/plan/paths.ts'
import type { Script } from '../../lib/shell/sh.ts'
import { HASH_FILE, NO_ZSTD, closingScript, completeScript, tidyScript, restoreScript, swapScript, uploadReceiveScript, uploadScript, unUploadScript, stopScript, startScript } from '../../lib/plan/scripts.ts'

const SNAP = new URL('../fixtures/etcd/snapshot-3.4.23-rev51.db', import.meta.url).pathname
const SHA = createHash('sha256').update(readFileSync(SNAP)).digest('hex')
const ETCDCTL = '/usr/bin/etcdctl'

function sh(script: Script | string, input?: Buffer) {
  return spawnSync('/bin/sh', ['-c', String(script)], { input, encoding: 'utf8' })
}

const SIZE = readFileSync(SNAP).length

describe('uploadScript', () => {
  it('sends nothing when the same file is already here and verified, and refuses without room before writing', () => {
    const root = mkdtempSync(join(tmpdir(), 'up-'))
    const p = memberPaths(join(root, 'etcd'), SHA, 'tok', '20260101T000000Z', false)
    const first = sh(uploadScript(p, SHA, SIZE), readFileSync(SNAP))
    expect(first.stdout).toMatch(/^created-work=.*\n(zstd=1\n)?ready\ncopied=/m)
    const again = sh(uploadScript(p, SHA, SIZE), Buffer.alloc(0))
    expect(again.status).toBe(0)
    expect(again.stdout).toBe(`in-place=${p.snapshot}\n`)
    // Touched since (ctime moved): no longer trusted, sent again.
    writeFileSync(p.snapshot, readFileSync(SNAP))
    expect(sh(uploadScript(p, SHA, SIZE), readFileSync(SNAP)).stdout).toMatch(/^copied=/m)

    const huge = memberPaths(join(root, 'other'), SHA, 'tok', '20260101T000000Z', false)
    const full = sh(uploadScript(huge, SHA, 2 ** 60), readFileSync(SNAP))
    expect(full.status).toBe(1)
    expect(full.stderr).toMatch(/No space left on device for the snapshot: \d+ KiB free in .*, \d+ KiB needed \(nothing was written\)/)
    expect(existsSync(huge.work)).toBe(false)
  })

  it('is taken back exactly by unUploadScript: a work dir it made goes, an earlier one keeps its other lines', () => {
    const root = mkdtempSync(join(tmpdir(), 'up-'))
    const p = memberPaths(join(root, 'etcd'), SHA, 'tok', '20260101T000000Z', false)
    expect(sh(uploadScript(p, SHA, SIZE), readFileSync(SNAP)).status).toBe(0)
    const undo = sh(unUploadScript(p, SHA, true), Buffer.alloc(0))
    expect(undo.status, undo.stderr).toBe(0)
    expect(existsSync(p.work)).toBe(false)

    mkdirSync(p.work)
    writeFileSync(p.state, 'aside /somewhere/old\n')
    expect(sh(uploadScript(p, SHA, SIZE), readFileSync(SNAP)).stdout).not.toMatch(/created-work/)
    expect(sh(unUploadScript(p, SHA, false), Buffer.alloc(0)).status).toBe(0)
    expect(readFileSync(p.state, 'utf8')).toBe('aside /somewhere/old\n')
    expect(readdirSync(p.work)).toEqual(['state'])
    // Not known whether it made the dir: a dir holding anything else stays, silently; an empty one goes.
    const unknown = sh(unUploadScript(p, SHA, 'if-empty'), Buffer.alloc(0))
    expect(unknown.stdout).not.toMatch(/left=/)
    expect(readdirSync(p.work)).toEqual(['state'])
    rmSync(p.state)
    expect(sh(unUploadScript(p, SHA, 'if-empty'), Buffer.alloc(0)).status).toBe(0)
    expect(existsSync(p.work)).toBe(false)
  })

  it('renames the copy into place only when its sha256 matches', () => {
    const root = mkdtempSync(join(tmpdir(), 'up-'))
    const p = memberPaths(join(root, 'etcd'), SHA, 'tok', '20260101T000000Z', false)
    const ok = sh(uploadScript(p, SHA, SIZE), readFileSync(SNAP))
    expect(ok.status).toBe(0)
    expect(readFileSync(p.snapshot).equals(readFileSync(SNAP))).toBe(true)
    expect(readdirSync(p.work).filter((f) => f.includes('.part'))).toEqual([])

    const bad = sh(uploadScript(p, SHA.replace(/^./, SHA[0] === 'a' ? 'b' : 'a'), SIZE), readFileSync(SNAP))
    expect(bad.status).toBe(65)
    expect(bad.stderr).toMatch(/corrupt: sha256 [0-9a-f]{64}, expected/)
    expect(readdirSync(p.work).filter((f) => f.includes('.part'))).toEqual([])
  })

  it('takes a zstd stream when asked, proven by its frame checksum and size, not hashed again; a host without zstd reads nothing', () => {
    const root = mkdtempSync(join(tmpdir(), 'up-'))
    const p = memberPaths(join(root, 'etcd'), SHA, 'tok', '20260101T000000Z', false)
    const packed = execFileSync('zstd', ['-1', '-q', '-c', '--check', SNAP])
    expect(packed.length).toBeLessThan(readFileSync(SNAP).length)
    // The host's hashers leave a mark if anything runs them: the sender checked the bytes it compressed.
    const bin = mkdtempSync(join(tmpdir(), 'bin-'))
    const mark = join(bin, 'hashed')
    for (const tool of ['openssl', 'sha256sum']) {
      writeFileSync(join(bin, tool), `#!/bin/sh\necho ${tool} >> ${mark}\nexit 99\n`, { mode: 0o755 })
    }
    const ok = spawnSync('/bin/sh', ['-c', String(uploadScript(p, SHA, SIZE, 'zstd'))], { input: packed, encoding: 'utf8', env: { PATH: `${bin}:${process.env.PATH}` } })
    expect(ok.status, ok.stderr).toBe(0)
    expect(existsSync(mark)).toBe(false)
    expect(readFileSync(p.snapshot).equals(readFileSync(SNAP))).toBe(true)
    expect(readFileSync(p.state, 'utf8')).toMatch(new RegExp(`^verified ${SHA} `, 'm'))
    // The plain copy has nothing but the hash to prove it: it still runs one.
    const plain = memberPaths(join(root, 'plain', 'etcd'), SHA, 'tok', 'x', false)
    const hashed = spawnSync('/bin/sh', ['-c', String(uploadScript(plain, SHA, SIZE))], { input: readFileSync(SNAP), encoding: 'utf8', env: { PATH: `${bin}:${process.env.PATH}` } })
    expect(hashed.status).toBe(65)
    expect(readFileSync(mark, 'utf8')).toMatch(/openssl/)
    // No zstd on the host: NO_ZSTD before anything is read or written (the sender then sends it plain).
    const bare = mkdtempSync(join(tmpdir(), 'bin-'))
    const other = memberPaths(join(root, 'sub', 'etcd'), SHA, 'tok', 'x', false)
    const none = spawnSync('/bin/sh', ['-c', String(uploadScript(other, SHA, SIZE, 'zstd'))], { input: packed, encoding: 'utf8', env: { PATH: bare } })
    expect(none.status).toBe(NO_ZSTD)
    expect(existsSync(other.work)).toBe(false)
  })

  it('a zstd stream cut short, corrupt, with a wrong checksum, of another size, or with junk after it: nothing renamed into place, its part removed, all of stdin read', () => {
    const packed = execFileSync('zstd', ['-1', '-q', '-c', '--check', SNAP])
    const corrupt = Buffer.from(packed)
    corrupt[Math.floor(corrupt.length / 2)] ^= 0xff
    // The content decodes, only its checksum (the frame's last 4 bytes) disagrees.
    const checksum = Buffer.from(packed)
    checksum[checksum.length - 1] ^= 0xff
    // A sound frame of other bytes: one more byte than the snapshot.
    const longer = execFileSync('zstd', ['-1', '-q', '-c', '--check'], { input: Buffer.concat([readFileSync(SNAP), Buffer.from('x')]) })
    // Each on exactly its bytes (a session bounds the script's stdin), failing for its own reason.
    const cases = [
      ['cut short', packed.subarray(0, packed.length - 100), /truncated|premature|error/i],
      ['corrupt', corrupt, /error|corrupt|checksum/i],
      ['wrong checksum', checksum, /checksum/i],
      ['another size', longer, new RegExp(`${SIZE + 1} bytes after decompression, expected ${SIZE}`)],
      ['junk after it', Buffer.concat([packed, Buffer.from('not zstd at all')]), /error|unknown|unsupported/i],
    ] as const
    const run = (p: ReturnType<typeof memberPaths>, input: Buffer) =>
      spawnSync('/bin/sh', ['-c', `(\n${String(uploadReceiveScript(p, SHA, SIZE, 'zstd'))}\n); echo "rc=$? rest=$(wc -c)"`], { input, encoding: 'utf8' })
    for (const [what, input, why] of cases) {
      const root = mkdtempSync(join(tmpdir(), 'up-'))
      const p = memberPaths(join(root, 'etcd'), SHA, 'tok', '20260101T000000Z', false)
      mkdirSync(p.work, { recursive: true })
      const r = run(p, input)
      expect(r.stdout, `${what}: ${r.stderr}`).toMatch(/^rc=[1-9]\d* rest=0$/m)
      expect(r.stderr, what).toMatch(why)
      expect(existsSync(p.snapshot), what).toBe(false)
      expect(readdirSync(p.work).filter((f) => f.includes('part')), what).toEqual([])
      expect(existsSync(p.state) ? readFileSync(p.state, 'utf8') : '', what).not.toMatch(/^verified /m)
    }
    // What the script leaves of its stdin is counted after it: nothing, whatever failed (a session reads its next message there).
    const root = mkdtempSync(join(tmpdir(), 'up-'))
    const p = memberPaths(join(root, 'etcd'), SHA, 'tok', '20260101T000000Z', false)
    mkdirSync(p.work, { recursive: true })
    expect(run(p, Buffer.concat([checksum, Buffer.alloc(8 << 20, 1)])).stdout).toMatch(/^rc=[1-9]\d* rest=0$/m)
    // And the sound frame, on exactly its bytes, is taken.
    expect(run(p, packed).stdout).toMatch(/^rc=0 rest=0$/m)
    expect(readFileSync(p.snapshot).equals(readFileSync(SNAP))).toBe(true)
  })

  it('writes a part file of its own, and removes only the parts whose writer is gone', () => {
    const root = mkdtempSync(join(tmpdir(), 'up-'))
    const p = memberPaths(join(root, 'etcd'), SHA, 'tok', '20260101T000000Z', false)
    mkdirSync(p.work, { recursive: true })
    // A writer that died (a killed run) and one still writing (a lost connection's, while a retry runs).
    const dead = spawnSync('/bin/sh', ['-c', 'echo $$']).stdout.toString().trim()
    writeFileSync(`${p.part}.${dead}`, 'half')
    writeFileSync(`${p.part}.${process.pid}`, 'still being written')
    const ok = sh(uploadScript(p, SHA, SIZE), readFileSync(SNAP))
    expect(ok.status, ok.stderr).toBe(0)
    expect(readdirSync(p.work).filter((f) => f.startsWith('snapshot-')).sort()).toEqual([`${p.snapshot.split('/').pop()}.part.${process.pid}`, p.snapshot.split('/').pop()].sort())
  })
})

describe('restoreScript and swapScript (real etcdctl 3.4)', () => {
  let root: string
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'rs-'))
  })

  function setup(token: string, stamp = '20260101T000000Z', mountpoint = false, etcdUser?: string) {
    const paths = memberPaths(join(root, 'etcd'), SHA, token, stamp, mountpoint)
    mkdirSync(paths.work, { recursive: true })
    copyFileSync(SNAP, paths.snapshot)
    const restore = restoreScript({
      paths, ports: [65001, 65002],
      sha256: SHA,
      mountpoint,
      etcdUser,
      restore: { tool: 'etcdctl', bin: ETCDCTL, name: 'etcd1', initialCluster: 'etcd1=http://10.0.0.1:2380', token, peerUrl: 'http://10.0.0.1:2380' },
    })
    const swap = swapScript({ paths, ports: [65001, 65002], sha256: SHA, token, mountpoint, etcdUser })
    /** Both, as a run does them (the member's etcd stopped between). */
    const both = () => {
      const r = sh(restore)
      return r.status === 0 ? { restored: r, ...sh(swap) } : { restored: r, ...r }
    }
    return { paths, restore, swap, both }
  }

  it('restores beside the data dir without touching it, then moves old data aside (never deleting it) and the restored data in', () => {
    const { paths, restore, swap } = setup('t1')
    mkdirSync(join(paths.dataDir, 'member'), { recursive: true })
    writeFileSync(join(paths.dataDir, 'member', 'old-marker'), 'precious')
    const r = sh(restore)
    expect(r.stderr).toBe('')
    expect(r.stdout).toBe(`restore=ready ${paths.restoreTmp}\n`)
    // The member's data dir is as it was: the old etcd may still run on it.
    expect(readdirSync(join(paths.dataDir, 'member'))).toEqual(['old-marker'])
    expect(existsSync(join(paths.restoreTmp, 'member', 'snap', 'db'))).toBe(true)
    const s = sh(swap)
    expect(s.stderr).toBe('')
    expect(s.status).toBe(0)
    expect(s.stdout).toContain(`set-aside=${paths.aside}`)
    expect(readFileSync(join(paths.aside, 'member', 'old-marker'), 'utf8')).toBe('precious')
    expect(existsSync(join(paths.dataDir, 'member', 'snap', 'db'))).toBe(true)
    expect(execFileSync('stat', ['-c', '%a', paths.dataDir]).toString().trim()).toBe('700')
    expect(readFileSync(paths.state, 'utf8')).toContain(`aside ${paths.aside}\nrestored ${SHA} t1\n`)
  })

  it('is idempotent: a second run with the same token changes nothing and sets nothing aside again', () => {
    const { paths, both } = setup('t1')
    mkdirSync(join(paths.dataDir, 'member'), { recursive: true })
    expect(both().status).toBe(0)
    const before = readdirSync(root).sort()
    const again = both()
    expect(again.status).toBe(0)
    expect(again.restored.stdout).toContain('restore=already-done')
    expect(again.stdout).toContain('swap=already-done')
    expect(readdirSync(root).sort()).toEqual(before)
  })

  it('finishes a swap interrupted after the old data moved aside', () => {
    const { paths, both } = setup('t2')
    mkdirSync(join(paths.dataDir, 'member'), { recursive: true })
    writeFileSync(join(paths.dataDir, 'member', 'old-marker'), 'precious')
    // As if killed between `mv D A` and `mv T D`: the old data is aside, D is gone.
    execFileSync('mv', [paths.dataDir, paths.aside])
    writeFileSync(paths.state, `aside ${paths.aside}\n`)
    mkdirSync(paths.restoreTmp, { recursive: true }) // a half-written temp dir
    const r = both()
    expect(r.status).toBe(0)
    expect(r.stdout).not.toContain('set-aside=')
    expect(readFileSync(join(paths.aside, 'member', 'old-marker'), 'utf8')).toBe('precious')
    expect(existsSync(join(paths.dataDir, 'member', 'snap', 'db'))).toBe(true)
  })

  it('a failed restore reports failure, leaves nothing half-made, and the swap then refuses: old data kept in place', () => {
    const { paths, restore, swap } = setup('t3')
    mkdirSync(join(paths.dataDir, 'member'), { recursive: true })
    writeFileSync(paths.snapshot, 'not a snapshot at all')
    const r = sh(restore)
    expect(r.status).not.toBe(0)
    expect(existsSync(paths.restoreTmp)).toBe(false)
    const s = sh(swap)
    expect(s.status).toBe(1)
    expect(s.stderr).toMatch(/no restored data in .* \(its restore did not finish\): run again to restore it/)
    expect(existsSync(join(paths.dataDir, 'member'))).toBe(true)
    expect(existsSync(paths.aside)).toBe(false)
  })

  it('with a mount point, moves the contents, not the directory, and leaves lost+found', () => {
    const { paths, both } = setup('t4', '20260101T000000Z', true)
    mkdirSync(join(paths.dataDir, 'member'), { recursive: true })
    mkdirSync(join(paths.dataDir, 'lost+found'))
    writeFileSync(join(paths.dataDir, 'member', 'old-marker'), 'precious')
    const r = both()
    expect(r.status).toBe(0)
    expect(paths.aside.startsWith(`${paths.dataDir}/`)).toBe(true)
    expect(readFileSync(join(paths.aside, 'member', 'old-marker'), 'utf8')).toBe('precious')
    expect(existsSync(join(paths.dataDir, 'lost+found'))).toBe(true)
    expect(existsSync(join(paths.dataDir, 'member', 'snap', 'db'))).toBe(true)
    // Restored on the mount point's own disk (a rename, not a copy across devices), and nothing of it left over.
    expect(paths.restoreTmp.startsWith(`${paths.dataDir}/.etcd-rescue-restore-`)).toBe(true)
    expect(readdirSync(paths.dataDir).sort()).toEqual(['etcd-rescue-old-20260101T000000Z', 'lost+found', 'member'])
  })

  it('tidies the work dir once complete: removes the copied snapshots (this one and an earlier one), never a file named by --snapshot HOST:PATH, nothing else', () => {
    const { paths, both } = setup('t8')
    expect(both().stdout).toContain('swap=done')
    const earlier = join(paths.work, 'snapshot-0123456789abcdef.db')
    const named = join(paths.work, 'snapshot-fedcba9876543210.db')
    for (const f of [earlier, `${earlier}.part.123`, named]) writeFileSync(f, 'a copy')
    writeFileSync(join(paths.work, 'snapshot-notes.txt'), 'not ours to remove')
    mkdirSync(join(paths.work, 'snapshot-dir.db'))
    const r = sh(tidyScript(paths, named))
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout.split('\n').filter(Boolean).sort()).toEqual([`removed=${earlier}`, `removed=${earlier}.part.123`, `removed=${paths.snapshot}`].sort())
    expect(readdirSync(paths.work).sort()).toEqual(['restore.log', 'snapshot-dir.db', named.split('/').pop(), 'snapshot-notes.txt', 'state'].sort())
    // A copy it cannot remove (an rm that fails, on PATH) is said, and the step still ends well.
    const bin = mkdtempSync(join(tmpdir(), 'rm-fails-'))
    writeFileSync(join(bin, 'rm'), '#!/bin/sh\necho "rm: cannot remove: Read-only file system" >&2\nexit 1\n', { mode: 0o755 })
    writeFileSync(earlier, 'another copy')
    const stuck = spawnSync('/bin/sh', ['-c', tidyScript(paths).text], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } })
    expect(stuck.status).toBe(0)
    expect(stuck.stdout).toContain(`left=${earlier}\n`)
    expect(existsSync(earlier)).toBe(true)
  })

  it('closes a verified run: the mark, then the tidy; a journal it cannot write fails the step and removes nothing', () => {
    const { paths, both } = setup('t7')
    expect(both().stdout).toContain('swap=done')
    const r = sh(closingScript(paths, SHA, 't7'))
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toBe(`marked=1\nremoved=${paths.snapshot}\n`)
    expect(readFileSync(paths.state, 'utf8')).toMatch(new RegExp(`complete ${SHA} t7\n$`))
    // Its journal's path a directory, which root cannot append to either.
    writeFileSync(paths.snapshot, 'a copy again')
    const unmarked = sh(closingScript({ ...paths, state: paths.work }, SHA, 't7'))
    expect(unmarked.status).toBe(1)
    expect(unmarked.stdout).toBe('')
    expect(existsSync(paths.snapshot)).toBe(true)
  })

  it('a completed recovery is not resumed: restores again from the same snapshot after `complete` was journaled', () => {
    const { paths, both } = setup('t9')
    expect(both().stdout).toContain('swap=done')
    expect(sh(completeScript(paths, SHA, 't9')).status).toBe(0)
    // Disaster again, same snapshot and token: this is a new recovery, not a resume.
    const again = setup('t9', '20260101T000001Z').both()
    expect(again.restored.stdout).toContain('restore=ready')
    expect(again.stdout).toContain('swap=done')
    expect(again.stdout).toContain('set-aside=')
  })

  it('hands the restored data dir to etcd_user, mode 0700', () => {
    const { paths, both } = setup('own', '20260101T000000Z', false, 'nobody')
    const r = both()
    expect(r.status, r.stderr).toBe(0)
    expect(execFileSync('stat', ['-c', '%U %a', paths.dataDir]).toString().trim()).toBe('nobody 700')
    expect(execFileSync('stat', ['-c', '%U', join(paths.dataDir, 'member', 'snap', 'db')]).toString().trim()).toBe('nobody')
  })
})

describe('stop and start scripts', () => {
  it('are valid POSIX sh', () => {
    const spec = { service: 'process' as const, serviceName: 'etcd', dataDir: "/var/lib/it's etcd", ports: [2380, 2379] }
    for (const s of [stopScript(spec), stopScript({ ...spec, service: 'systemd' }), startScript({ ...spec, restored: { state: '/s', mark: 'restored x y' }, process: { etcdBin: '/usr/bin/etcd', name: 'etcd1', dataDir: spec.dataDir, peerUrl: 'http://10.0.0.1:2380', clientUrl: 'http://10.0.0.1:2379' } })]) {
      expect(spawnSync('/bin/sh', ['-n', '-c', s.text]).status).toBe(0)
    }
  })

  it('finds no etcd of a data dir nobody uses', () => {
    const r = sh(stopScript({ service: 'process', serviceName: 'etcd', dataDir: '/nonexistent/etcd-rescue-test', ports: [65001, 65002] }))
    expect(r.status).toBe(0)
    expect(r.stdout.trim()).toBe('stopped=none-running')
  })
})

describe('hash_file', () => {
  it('gives the same SHA-256 with OpenSSL and with coreutils alone', () => {
    const bin = mkdtempSync(join(tmpdir(), 'bin-'))
    for (const tool of ['sha256sum', 'cut']) execFileSync('ln', ['-s', execFileSync('sh', ['-c', `command -v ${tool}`]).toString().trim(), join(bin, tool)])
    const script = `${HASH_FILE}\nhash_file ${SNAP}`
    const withOpenssl = spawnSync('/bin/sh', ['-c', script], { encoding: 'utf8' })
    const coreutilsOnly = spawnSync('/bin/sh', ['-c', script], { encoding: 'utf8', env: { PATH: bin } })
    expect(withOpenssl.stdout.trim()).toBe(SHA)
    expect(coreutilsOnly.stdout.trim()).toBe(SHA)
  })
})

describe('invariants checked on the host right before their step', () => {
  let root: string
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'inv-'))
  })
  const restoreOf = (paths: ReturnType<typeof memberPaths>) => restoreScript({
    paths, ports: [65011, 65012], sha256: SHA, mountpoint: false,
    restore: { tool: 'etcdctl', bin: ETCDCTL, name: 'etcd1', initialCluster: 'etcd1=http://10.0.0.1:2380', token: 't1', peerUrl: 'http://10.0.0.1:2380' },
  })

  it('the upload records what it verified, and restore trusts only that file', () => {
    const paths = memberPaths(join(root, 'etcd'), SHA, 't1', '20260101T000000Z', false)
    expect(sh(uploadScript(paths, SHA, SIZE), readFileSync(SNAP)).status).toBe(0)
    expect(readFileSync(paths.state, 'utf8')).toMatch(new RegExp(`^verified ${SHA} ${readFileSync(SNAP).length}:\\d+:\\d+\\.\\d{9}\n$`))
    mkdirSync(join(paths.dataDir, 'member'), { recursive: true })
    // The file changes after the copy (same size, other bytes): no restore, old data untouched.
    const bytes = readFileSync(SNAP)
    bytes[100] ^= 0xff
    writeFileSync(paths.snapshot, bytes)
    const r = sh(restoreOf(paths))
    expect(r.status).toBe(1)
    expect(r.stderr).toMatch(/is not the snapshot verified on this host/)
    expect(readdirSync(paths.dataDir)).toEqual(['member'])
    expect(readdirSync(root).filter((f) => f.includes('etcd-rescue-old'))).toEqual([])
  })

  it('start refuses a data dir that does not hold this run\'s restore', () => {
    const state = join(root, 'state')
    const start = (mark: string) => startScript({
      service: 'process', serviceName: 'etcd', dataDir: join(root, 'd'), ports: [65013, 65014], restored: { state, mark },
      process: { etcdBin: '/bin/true', name: 'e1', dataDir: join(root, 'd'), peerUrl: 'http://127.0.0.1:65014', clientUrl: 'http://127.0.0.1:65013', logFile: join(root, 'log') },
    })
    writeFileSync(state, `restored ${SHA} old-token\ncomplete ${SHA} old-token\n`)
    const refused = sh(start(`restored ${SHA} t1`))
    expect(refused.status).toBe(1)
    expect(refused.stderr).toMatch(/does not hold this recovery's restore/)
    writeFileSync(state, `restored ${SHA} t1\nverified ${SHA} 5:12:1795622157.308477680\n`)
    const ok = sh(start(`restored ${SHA} t1`))
    expect(ok.stdout).toContain('started=process')
  })
})

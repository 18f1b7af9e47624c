// Preflight's test of whether the data dir is a mount point (then its contents
// move aside, not the dir itself), for a data dir whose path holds a space and a
// backslash, which /proc/self/mountinfo writes as \040 and \134. A tmpfs mounted
// there in a mount namespace of the test's own (root only: CI runs as root),
// the probe run for real under each /bin/sh etcd-rescue meets.
import { afterAll, describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseFacts, probeScript } from '../../lib/plan/facts.ts'
import { SHELLS, available } from '../support/shells.ts'

const root = mkdtempSync(join(tmpdir(), 'probe-mount-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))
const canMount = process.getuid?.() === 0 && spawnSync('unshare', ['-m', 'true']).status === 0

describe.each(SHELLS)('the probe\'s mount point test, under %s', (_name, shell) => {
  it.skipIf(!available(shell) || !canMount)('finds a data dir with a space and a backslash in its path to be a mount point, and one beside it not', () => {
    const dataDir = join(root, `${_name.replace(/ /g, '-')} etcd data\\1`)
    const plain = join(root, `${_name.replace(/ /g, '-')} etcd plain`)
    for (const d of [dataDir, plain]) mkdirSync(d, { recursive: true })
    const probe = (d: string) => {
      const file = join(root, `probe-${Math.random().toString(36).slice(2)}.sh`)
      writeFileSync(file, probeScript({ dataDir: d, work: join(root, 'work'), snapshot: join(root, 'x.db'), snapshotSize: 1, snapshotSha: 'a'.repeat(64), ports: [65010], service: 'process', serviceName: 'etcd' }).text)
      // The mount lives and dies with the namespace: nothing is left mounted on this machine.
      const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs probe-test "$1" && shift && exec "$@"', 'sh', dataDir, ...shell, file], { encoding: 'utf8' })
      expect(r.status, r.stderr).toBe(0)
      return parseFacts(r.stdout)
    }
    expect(probe(dataDir).dataDir).toMatchObject({ exists: true, mountpoint: true })
    expect(probe(dataDir).dataDir.freeBytes).toBeGreaterThan(0)
    expect(probe(plain).dataDir).toMatchObject({ exists: true, mountpoint: false })
  })
})

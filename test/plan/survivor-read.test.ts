import { describe, expect, it } from 'vitest'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { HeldReadMissing, heldReadScript, parseHeld, walIds } from '../../lib/plan/survivor-read.ts'

// Real output of heldReadScript on etcd 3.4.23 (a one-member cluster on loopback), stopped then running;
// the stopped member's held.bolt lines are the walk of test/fixtures/etcd/snapshot-3.4.23-rev51.db.
const WAL = '040000000000008408041000000000001f00000000000081080110c0eee05a1a16088df2f48ec1f7a6d7bd0110aaf4e5f599f3ebe7d101000d00000000000083080510b6f7e4581a04080010000000'
const STOPPED = `held.etcdctl=/usr/bin/etcdctl
held.etcdutl=
held.member=1
held.state=stopped
held.bolt.meta.0=edda0ced02000000001000000000000005000000000000000000000000000000ffffffffffffffff06000000000000001b000000000000005b6a36d8f2b4ecbb
held.bolt.walk.0=ok 0000000000000033 0000000000000036
held.bolt.meta.1=edda0ced02000000001000000000000005000000000000000000000000000000ffffffffffffffff06000000000000001a000000000000003a2047cde9edf19c
held.bolt.walk.1=ok 0000000000000033 0000000000000036
held.bolt.done=1
held.wal=${WAL}
held.done=1
`
const RUNNING = `held.etcdctl=/usr/bin/etcdctl
held.etcdutl=
held.member=1
held.state=running
held.status=[{"Endpoint":"http://127.0.0.1:23791","Status":{"header":{"cluster_id":15118495548433857066,"member_id":13668033151171901709,"revision":6003,"raft_term":3},"version":"3.4.23","dbSize":4169728,"leader":13668033151171901709,"raftIndex":6008,"raftTerm":3,"raftAppliedIndex":6008,"dbSizeInUse":4157440}}] 
held.done=1
`

describe('parseHeld', () => {
  it('reads a stopped member: revision and raft index (consistent_index) from the walk of its db, IDs from the WAL', () => {
    expect(parseHeld(STOPPED, 'etcd1')).toEqual({
      member: 'etcd1', hasData: true, state: 'stopped', revision: 51, raftIndex: 54, clusterId: 'd1cfaf999eb97a2a', memberId: 'bdae9bbc11dd390d',
      tools: { etcdctl: '/usr/bin/etcdctl', etcdutl: undefined },
    })
  })

  it('reads a running member: revision, raft index and IDs from its own status, 64-bit IDs exact', () => {
    expect(parseHeld(RUNNING, 'etcd1')).toMatchObject({ state: 'running', revision: 6003, raftIndex: 6008, clusterId: 'd1cfaf999eb97a2a', memberId: 'bdae9bbc11dd390d', noLeader: false })
  })

  it('marks a running member without quorum', () => {
    const out = RUNNING.replace('"dbSizeInUse":4157440}', '"dbSizeInUse":4157440,"errors":["etcdserver: no leader"]}')
    expect(parseHeld(out, 'etcd1')).toMatchObject({ revision: 6003, noLeader: true })
  })

  it('keeps the reason when a member cannot be read, and never a number that does not parse', () => {
    const deadline = RUNNING.replace(/held\.status=.*/, 'held.status={"level":"warn","msg":"retrying of unary invoker failed","error":"context deadline exceeded"} Error: context deadline exceeded ')
    expect(parseHeld(deadline, 'etcd2')).toMatchObject({ state: 'running', error: expect.stringMatching(/^endpoint status: .*context deadline exceeded/) })
    expect(parseHeld(deadline, 'etcd2').revision).toBeUndefined()
    const unreadable = STOPPED.replace(/held\.bolt\.[^\n]*\n/g, '').replace('held.wal', 'held.bolt.error=cannot read the file\nheld.wal')
    expect(parseHeld(unreadable, 'etcd2')).toMatchObject({ state: 'stopped', error: 'member/snap/db: cannot read the file', clusterId: 'd1cfaf999eb97a2a' })
    expect(parseHeld(unreadable, 'etcd2').revision).toBeUndefined()
    expect(parseHeld(unreadable, 'etcd2').damaged).toBeUndefined()
    const corrupt = STOPPED.replace(/walk\.\d=ok .*/g, (m) => m.replace(/ok .*/, 'error not a tree page (flags 0)'))
    expect(parseHeld(corrupt, 'etcd2')).toMatchObject({ error: 'member/snap/db: not a tree page (flags 0)', damaged: true })
    // A walk cut off (awk killed, out of memory) judged nothing: unknown, never damaged.
    const cutOff = parseHeld(STOPPED.replace('held.bolt.done=1\n', ''), 'etcd2')
    expect(cutOff).toMatchObject({ error: expect.stringMatching(/did not run to its end/) })
    expect(cutOff.damaged).toBeUndefined()
    expect(parseHeld(STOPPED.replace(/held\.db_error=.*|held\.bolt\.walk\.\d=.*/g, ''), 'etcd2').revision).toBeUndefined()
    const evil = STOPPED.replace(/ok 0000000000000033/g, 'ok 33; rm -rf /')
    expect(parseHeld(evil, 'etcd2').revision).toBeUndefined()
    expect(parseHeld(STOPPED.replace('/usr/bin/etcdctl', 'etcdctl; reboot'), 'etcd2').tools.etcdctl).toBeUndefined()
  })

  it('a data dir without a member holds nothing', () => {
    expect(parseHeld('held.etcdctl=/usr/bin/etcdctl\nheld.done=1\n', 'etcd3')).toEqual({ member: 'etcd3', hasData: false, state: 'none', tools: { etcdctl: '/usr/bin/etcdctl', etcdutl: undefined } })
  })

  it('refuses output where the read did not run to its end', () => {
    expect(() => parseHeld(STOPPED.replace('held.done=1', ''), 'etcd1')).toThrow(HeldReadMissing)
  })
})

describe('walIds', () => {
  it('finds the metadata record after the CRC record', () => {
    expect(walIds(WAL)).toEqual({ memberId: 'bdae9bbc11dd390d', clusterId: 'd1cfaf999eb97a2a' })
  })
  it('gives nothing for a truncated or foreign file', () => {
    expect(walIds(WAL.slice(0, 40))).toBeUndefined()
    expect(walIds('ff'.repeat(64))).toBeUndefined()
    expect(walIds('zz')).toBeUndefined()
  })
})

describe('heldReadScript', () => {
  it('quotes every value and neither copies the db nor opens it with etcd\'s tools', () => {
    const s = heldReadScript({ dataDir: "/var/lib/et'cd", clientUrl: 'https://10.0.0.1:2379', ports: [2380, 2379], tls: { cacert: '/etc/ssl/ca.pem' } }).text
    expect(s).toContain(`SV_D='/var/lib/et'\\''cd'`)
    expect(s).toContain('--cacert=/etc/ssl/ca.pem')
    expect(s).not.toMatch(/\bcp\b|snapshot status/)
  })

  it('reads a stopped member\'s revision in place, changing nothing and writing nothing beside it', () => {
    const root = mkdtempSync(join(tmpdir(), 'held-'))
    const dataDir = join(root, 'etcd')
    const snap = new URL('../fixtures/etcd/snapshot-3.4.23-rev51.db', import.meta.url).pathname
    execFileSync('/usr/bin/etcdctl', ['snapshot', 'restore', snap, '--name', 'e1', '--initial-cluster', 'e1=http://127.0.0.1:65032', '--initial-advertise-peer-urls', 'http://127.0.0.1:65032', '--data-dir', dataDir], { env: { ...process.env, ETCDCTL_API: '3' }, stdio: 'ignore' })
    const db = join(dataDir, 'member', 'snap', 'db')
    const before = { bytes: readFileSync(db), mtime: statSync(db).mtimeMs }
    const r = spawnSync('/bin/sh', ['-c', heldReadScript({ dataDir, binDir: '/usr/bin', clientUrl: 'http://127.0.0.1:65031', ports: [65031, 65032] }).text], { encoding: 'utf8' })
    expect(parseHeld(r.stdout, 'e1')).toMatchObject({ state: 'stopped', revision: 51, clusterId: expect.stringMatching(/^[0-9a-f]+$/) })
    expect(readdirSync(root)).toEqual(['etcd'])
    expect(readFileSync(db).equals(before.bytes)).toBe(true)
    expect(statSync(db).mtimeMs).toBe(before.mtime)
    rmSync(root, { recursive: true, force: true })
  })
})

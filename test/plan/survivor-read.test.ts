import { describe, expect, it } from 'vitest'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { HeldReadMissing, heldReadScript, parseHeld, walIds } from '../../lib/plan/survivor-read.ts'

// Real output of heldReadScript on etcd 3.4.23 (a one-member cluster on loopback), stopped then running.
const WAL = '040000000000008408041000000000001f00000000000081080110c0eee05a1a16088df2f48ec1f7a6d7bd0110aaf4e5f599f3ebe7d101000d00000000000083080510b6f7e4581a04080010000000'
const STOPPED = `held.etcdctl=/usr/bin/etcdctl
held.etcdutl=
held.member=1
held.state=stopped
held.db_status={"hash":2619581017,"revision":6003,"totalKey":6006,"totalSize":4169728} 
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
  it('reads a stopped member: revision from the db copy, IDs from the WAL', () => {
    expect(parseHeld(STOPPED, 'etcd1')).toEqual({
      member: 'etcd1', hasData: true, state: 'stopped', revision: 6003, clusterId: 'd1cfaf999eb97a2a', memberId: 'bdae9bbc11dd390d',
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
    const noRoom = STOPPED.replace(/held\.db_status=.*/, 'held.db_error=no room to copy member/snap/db (4169728 bytes) into /var/lib/.etcd-rescue-etcd')
    expect(parseHeld(noRoom, 'etcd2')).toMatchObject({ state: 'stopped', error: expect.stringMatching(/^no room/), clusterId: 'd1cfaf999eb97a2a' })
    expect(parseHeld(noRoom, 'etcd2').revision).toBeUndefined()
    const corrupt = STOPPED.replace(/held\.db_status=.*/, 'held.db_status=Error: invalid database ')
    expect(parseHeld(corrupt, 'etcd2')).toMatchObject({ error: expect.stringMatching(/snapshot status of a copy of member\/snap\/db: Error: invalid database/), damaged: true })
    expect(parseHeld(noRoom, 'etcd2').damaged).toBeUndefined()
    const evil = STOPPED.replace('"revision":6003', '"revision":"6003; rm -rf /"')
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
  it('quotes every value and copies the db before reading it', () => {
    const s = heldReadScript({ dataDir: "/var/lib/et'cd", work: '/var/lib/.etcd-rescue-etcd', clientUrl: 'https://10.0.0.1:2379', ports: [2380, 2379], tls: { cacert: '/etc/ssl/ca.pem' } }).text
    expect(s).toContain(`SV_D='/var/lib/et'\\''cd'`)
    expect(s).toContain('--cacert=/etc/ssl/ca.pem')
    expect(s.indexOf('cp "$SV_DB" "$SV_T"')).toBeLessThan(s.indexOf('snapshot status "$SV_T"'))
    expect(s).not.toMatch(/snapshot status "\$SV_DB"/)
  })

  it('reads a stopped member\'s db from a copy in a dir of its own, never making or removing the work dir (the upload beside it owns that)', () => {
    const root = mkdtempSync(join(tmpdir(), 'held-'))
    const dataDir = join(root, 'etcd')
    const snap = new URL('../fixtures/etcd/snapshot-3.4.23-rev51.db', import.meta.url).pathname
    execFileSync('/usr/bin/etcdctl', ['snapshot', 'restore', snap, '--name', 'e1', '--initial-cluster', 'e1=http://127.0.0.1:65032', '--initial-advertise-peer-urls', 'http://127.0.0.1:65032', '--data-dir', dataDir], { env: { ...process.env, ETCDCTL_API: '3' }, stdio: 'ignore' })
    const work = join(root, '.etcd-rescue-etcd')
    const read = () => spawnSync('/bin/sh', ['-c', heldReadScript({ dataDir, binDir: '/usr/bin', work, clientUrl: 'http://127.0.0.1:65031', ports: [65031, 65032] }).text], { encoding: 'utf8' })
    const absent = read()
    expect(parseHeld(absent.stdout, 'e1')).toMatchObject({ state: 'stopped', revision: 51 })
    expect(readdirSync(root)).toEqual(['etcd'])
    // An upload's work dir, there already: left as it is.
    mkdirSync(work)
    writeFileSync(join(work, 'snapshot.db.part.1'), 'arriving')
    expect(parseHeld(read().stdout, 'e1')).toMatchObject({ revision: 51 })
    expect(readdirSync(root).sort()).toEqual(['.etcd-rescue-etcd', 'etcd'])
    expect(readdirSync(work)).toEqual(['snapshot.db.part.1'])
  })
})


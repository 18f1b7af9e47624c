import { describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseFacts, parseListeners, probeScript, type HostFacts } from '../../lib/plan/facts.ts'
import { clusterProblems, hostProblems, spaceNeeded, unitProblems } from '../../lib/plan/checks.ts'
import type { UnitConfig } from '../../lib/plan/unit.ts'
import { buildPlan, resumableToken, timeStamp } from '../../lib/plan/recovery.ts'
import { clusterId, memberId } from '../../lib/etcd/ids.ts'
import { parseVersion } from '../../lib/etcd/version.ts'
import type { Member } from '../../lib/inventory/members.ts'

function member(i: number, over: Partial<Member> = {}): Member {
  const address = `198.18.7.${10 + i}`
  return {
    inventoryHost: `node${i}`,
    name: `etcd${i}`,
    address,
    peerUrl: `http://${address}:2380`,
    clientUrl: `http://${address}:2379`,
    dataDir: '/var/lib/etcd',
    service: 'process',
    serviceName: 'etcd',
    ssh: { host: address, port: 22, user: 'root', become: false },
    vars: {},
    ...over,
  } as Member
}

function facts(over: Partial<HostFacts> = {}): HostFacts {
  return {
    uid: 0,
    hostname: 'h',
    bins: { etcd: '/usr/bin/etcd', etcdctl: '/usr/bin/etcdctl' },
    version: parseVersion('etcd Version: 3.4.23'),
    toolVersions: { etcd: '3.4.23', etcdctl: '3.4.23' },
    dataDir: { exists: true, entries: 1, hasMember: true, mountpoint: false },
    parent: { exists: true, writable: true, freeBytes: 10 * 2 ** 30 },
    snapshot: {},
    pids: [],
    listeners: [],
    has: { sha256sum: true, setsid: true, systemctl: false },
    ...over,
  }
}

const snapshot = { path: '/tmp/s.db', size: 100 * 2 ** 20, sha256: 'ab'.repeat(32), hasTrailer: true, pageSize: 4096 }

describe('probe script', () => {
  it('names the restore dirs an earlier run left, with their size', () => {
    const root = mkdtempSync(join(tmpdir(), 'probe-'))
    for (const d of ['.etcd-rescue-etcd/restore-tok1/member', 'etcd/.etcd-rescue-restore-tok2/member']) {
      mkdirSync(join(root, d), { recursive: true })
      writeFileSync(join(root, d, 'db'), Buffer.alloc(64 * 1024, 1))
    }
    const out = spawnSync('/bin/sh', ['-c', String(probeScript({
      dataDir: join(root, 'etcd'), work: join(root, '.etcd-rescue-etcd'), snapshot: join(root, 'x.db'), snapshotSize: 1, snapshotSha: 'a'.repeat(64),
      ports: [65010, 65011], service: 'process', serviceName: 'etcd',
    }))], { encoding: 'utf8' })
    expect(out.status, out.stderr).toBe(0)
    const f = parseFacts(out.stdout)
    expect(f.staleRestores?.map((x) => x.path)).toEqual([join(root, '.etcd-rescue-etcd/restore-tok1'), join(root, 'etcd/.etcd-rescue-restore-tok2')])
    for (const x of f.staleRestores!) expect(x.bytes).toBeGreaterThanOrEqual(64 * 1024)
    // Not counted as entries of the data dir (old data to set aside).
    expect(f.dataDir.entries).toBe(0)
  })

  it('refuses a stale.restore line it cannot read, naming the field', () => {
    const probe = (line: string) => () => parseFacts(`uid=0\n${line}\n`, 'etcd1')
    expect(probe('stale.restore=12 /var/lib/.etcd-rescue-etcd/restore-x')().staleRestores).toEqual([{ path: '/var/lib/.etcd-rescue-etcd/restore-x', bytes: 12 * 1024 }])
    expect(probe('stale.restore= /var/lib/.etcd-rescue-etcd/restore-x')).toThrow(/stale\.restore/)
    expect(probe('stale.restore=12 relative/path')).toThrow(/stale\.restore/)
  })

  it('runs under dash and reports this machine truthfully', () => {
    const root = mkdtempSync(join(tmpdir(), 'probe-'))
    mkdirSync(join(root, 'etcd', 'member'), { recursive: true })
    const out = spawnSync('/bin/sh', ['-c', String(probeScript({
      dataDir: join(root, 'etcd'), work: join(root, '.etcd-rescue-etcd'), snapshot: join(root, 'x.db'), snapshotSize: 1, snapshotSha: 'a'.repeat(64),
      ports: [65010, 65011], service: 'process', serviceName: 'etcd',
    }))], { encoding: 'utf8' })
    expect(out.status).toBe(0)
    const f = parseFacts(out.stdout)
    expect(f.uid).toBe(process.getuid!())
    expect(f.bins.etcd).toBe('/usr/bin/etcd')
    expect(f.version?.text).toBe('3.4.23')
    expect(f.toolVersions.etcdctl).toBe('3.4.23')
    expect(f.dataDir).toMatchObject({ exists: true, hasMember: true, mountpoint: false, entries: 1 })
    expect(f.parent.freeBytes).toBeGreaterThan(0)
    expect(f.pids).toEqual([])
    expect(f.staleRestores).toEqual([])
  })
})

describe('preflight checks', () => {
  const base = { member: member(1), snapshotSize: snapshot.size, snapshotSha: snapshot.sha256 }

  it('names a missing, unreadable or expired TLS file, and a unit user that does not exist', () => {
    const expired = [{ file: '/etc/ssl/etcd/ssl/ca.pem', notAfter: 'Jan 1 00:00:00 2021 GMT' }]
    const p = hostProblems({ ...base, facts: facts({ tls: { missing: ['/etc/ssl/etcd/ssl/admin-n1.pem'], unreadable: ['/k.pem'], notFile: ['/etc/ssl/etcd/ssl'], expired }, etcdUser: { name: 'etcd', exists: false } }) }).join('\n')
    expect(p).toMatch(/TLS file \/etc\/ssl\/etcd\/ssl is not a regular file \(a directory, a FIFO or a device\): etcdctl could not use it/)
    expect(p).toMatch(/TLS file \/etc\/ssl\/etcd\/ssl\/ca\.pem expired on Jan 1 00:00:00 2021 GMT \(by this host's clock\): etcd-rescue could not reach the member over https with it; renew it, then run again/)
    expect(p).toMatch(/TLS file \/etc\/ssl\/etcd\/ssl\/admin-n1\.pem does not exist/)
    expect(p).toMatch(/TLS file \/k\.pem is not readable/)
    expect(p).toMatch(/user etcd \(User= of etcd\), who must own the restored data, does not exist/)
  })

  it('refuses a unit that would run another member than the inventory describes, with a diff', () => {
    const unitConfig = { user: 'etcd', restart: 'always', execArgs: ['/usr/local/bin/etcd'], env: { ETCD_NAME: 'etcd1', ETCD_DATA_DIR: '/srv/etcd' }, envFrom: { ETCD_NAME: '/etc/etcd.env', ETCD_DATA_DIR: '/etc/etcd.env' }, envFiles: ['/etc/etcd.env'], envFilesMissing: [], exec: { path: '/usr/local/bin/etcd', missing: false }, tls: { missing: [], unreadable: [], notFile: [], expired: [] }, refuseManual: { start: false, stop: false }, needsReload: false, loaded: [] }
    const m = member(1, { service: 'systemd', peerUrl: 'https://10.0.0.1:2380' })
    const sd = { has: { sha256sum: true, setsid: true, systemctl: true }, unit: { loadState: 'loaded', fileState: 'enabled', active: 'active', held: false } }
    expect(hostProblems({ ...base, member: m, facts: facts({ ...sd, unitConfig }) }).join('\n')).toContain('- data dir: /var/lib/etcd\n    + data dir: /srv/etcd   (ETCD_DATA_DIR in /etc/etcd.env)')
    expect(hostProblems({ ...base, member: m, facts: facts({ ...sd, unitConfig: { ...unitConfig, env: { ETCD_NAME: 'etcd1', ETCD_DATA_DIR: '/var/lib/etcd' } } }) })).toEqual([])
  })

  it('refuses a unit that would fail to start, start another WAL or start a cluster of its own, saying how to go on', () => {
    const m = member(1, { service: 'systemd' })
    const ok: UnitConfig = { user: 'etcd', restart: 'always', execArgs: ['/usr/local/bin/etcd'], env: { ETCD_NAME: 'etcd1', ETCD_DATA_DIR: '/var/lib/etcd' }, envFrom: { ETCD_NAME: '/etc/etcd.env', ETCD_DATA_DIR: '/etc/etcd.env' }, envFiles: ['/etc/etcd.env'], envFilesMissing: [], exec: { path: '/usr/local/bin/etcd', missing: false }, tls: { missing: [], unreadable: [], notFile: [], expired: [] }, refuseManual: { start: false, stop: false }, needsReload: false, loaded: [] }
    expect(unitProblems(m, ok)).toEqual([])
    const env = (more: Record<string, string>) => ({ ...ok, env: { ...ok.env, ...more }, envFrom: { ...ok.envFrom, ...Object.fromEntries(Object.keys(more).map((k) => [k, '/etc/etcd.env'])) } })
    expect(unitProblems(m, env({ ETCD_FORCE_NEW_CLUSTER: 'true' }))).toEqual([
      'etcd starts etcd with --force-new-cluster (ETCD_FORCE_NEW_CLUSTER in /etc/etcd.env): on restored data each member would make a cluster of its own, a split under one cluster ID; remove it from the unit, then run again',
    ])
    // A bool flag alone is true; =false and an empty variable are not.
    expect(unitProblems(m, { ...ok, execArgs: ['/usr/local/bin/etcd', '--force-new-cluster'] }).join()).toMatch(/--force-new-cluster \(--force-new-cluster in ExecStart\)/)
    expect(unitProblems(m, { ...ok, execArgs: ['/usr/local/bin/etcd', '-force-new-cluster=false'] })).toEqual([])
    expect(unitProblems(m, env({ ETCD_FORCE_NEW_CLUSTER: '' }))).toEqual([])
    expect(unitProblems(m, env({ ETCD_WAL_DIR: '/wal/etcd' })).join()).toMatch(/^etcd keeps etcd's WAL apart from its data dir \(--wal-dir \/wal\/etcd, ETCD_WAL_DIR in \/etc\/etcd.env\): .*so etcd would start on the old WAL/)
    expect(unitProblems(m, env({ ETCD_WAL_DIR: '/var/lib/etcd/member/wal/' }))).toEqual([])
    expect(unitProblems(m, { ...ok, envFilesMissing: ['/etc/etcd.env'] })).toEqual(["etcd's EnvironmentFile /etc/etcd.env does not exist or cannot be read: systemd would refuse to start it"])
    expect(unitProblems(m, { ...ok, refuseManual: { start: true, stop: true } }).join()).toMatch(/^etcd has RefuseManualStart=yes and RefuseManualStop=yes: etcd-rescue starts and stops it with systemctl/)
    expect(unitProblems(m, { ...ok, refuseManual: { start: false, stop: true } }).join()).toMatch(/^etcd has RefuseManualStop=yes: etcd-rescue stops it with systemctl/)
    expect(unitProblems({ ...m, etcdUser: 'kube' }, ok).join()).toMatch(/^etcd_user is kube but etcd runs etcd as etcd \(User=\)/)
    expect(unitProblems({ ...m, etcdUser: 'etcd' }, ok)).toEqual([])
    expect(unitProblems({ ...m, etcdUser: 'kube' }, { ...ok, user: '' })).toEqual([])
    // TLS files: only those etcd takes count (a flag wins over its variable).
    const tlsUnit = { ...env({ ETCD_PEER_CERT_FILE: '/etc/ssl/etcd/ssl/member-n1.pem', ETCD_CERT_FILE: '/gone.pem' }), execArgs: ['/usr/local/bin/etcd', '--cert-file=/etc/ssl/etcd/ssl/member-n1.pem'] }
    const state = { missing: ['/gone.pem'], unreadable: [], notFile: [], expired: [{ file: '/etc/ssl/etcd/ssl/member-n1.pem', notAfter: 'Jan 1 00:00:00 2021 GMT' }] }
    expect(unitProblems(m, { ...tlsUnit, tls: state })).toEqual([
      "etcd's etcd is told to use /etc/ssl/etcd/ssl/member-n1.pem (--cert-file in ExecStart), which expired on Jan 1 00:00:00 2021 GMT (by this host's clock): restored members could not talk to each other or serve clients; renew the certificates, then run again",
      "etcd's etcd is told to use /etc/ssl/etcd/ssl/member-n1.pem (ETCD_PEER_CERT_FILE in /etc/etcd.env), which expired on Jan 1 00:00:00 2021 GMT (by this host's clock): restored members could not talk to each other or serve clients; renew the certificates, then run again",
    ])
    expect(unitProblems(m, { ...tlsUnit, tls: { ...state, expired: [] } })).toEqual([])
    // A file with more certificates than its expired first: as a certificate (a chain, its leaf
    // first) it is judged by that leaf; as a CA (a bundle during a rotation) it is not.
    const chain = { missing: [], unreadable: [], notFile: [], expired: [{ file: '/etc/ssl/etcd/ssl/both.pem', notAfter: 'Jan 1 00:00:00 2021 GMT', bundle: true as const }] }
    expect(unitProblems(m, { ...env({ ETCD_PEER_CERT_FILE: '/etc/ssl/etcd/ssl/both.pem' }), tls: chain }).join()).toMatch(/^etcd's etcd is told to use \/etc\/ssl\/etcd\/ssl\/both\.pem \(ETCD_PEER_CERT_FILE in \/etc\/etcd.env\), which expired/)
    expect(unitProblems(m, { ...env({ ETCD_PEER_TRUSTED_CA_FILE: '/etc/ssl/etcd/ssl/both.pem' }), tls: chain })).toEqual([])
    expect(unitProblems(m, { ...env({ ETCD_TRUSTED_CA_FILE: '/etc/ssl/etcd/ssl/both.pem' }), tls: { ...chain, expired: [{ ...chain.expired[0], bundle: undefined }] } }).join()).toMatch(/which expired/)
    // Where the unit's etcd listens for clients must include where etcd-rescue will reach it.
    const listen = (urls: string) => unitProblems({ ...m, clientUrl: 'https://10.0.0.1:2379' }, env({ ETCD_LISTEN_CLIENT_URLS: urls }))
    expect(listen('https://10.0.0.1:2379,https://127.0.0.1:2379')).toEqual([])
    expect(listen('https://0.0.0.0:2379')).toEqual([])
    expect(listen('https://etcd1.example:2379')).toEqual([])
    expect(listen('https://10.0.0.1:4001,https://127.0.0.1:2379')).toEqual([
      "etcd's etcd listens for clients on https://10.0.0.1:4001,https://127.0.0.1:2379 (ETCD_LISTEN_CLIENT_URLS in /etc/etcd.env), not on https://10.0.0.1:2379, where etcd-rescue would wait for it and prove it: set etcd_client_url to where it listens, then run again",
    ])
    expect(listen('http://10.0.0.1:2379')).toHaveLength(1)
    expect(unitProblems(m, { ...ok, needsReload: true }).join()).toMatch(/^etcd changed on disk since systemd last loaded it \(NeedDaemonReload=yes; .*run systemctl daemon-reload \(it restarts nothing, but loads every unit changed on this host\), then run again\. On systemd 255 and later .*touch the last drop-in, then reload$/)
    // User=root reads anything, and a numeric User= may be etcd_user itself.
    expect(unitProblems({ ...m, etcdUser: 'etcd' }, { ...ok, user: 'root' })).toEqual([])
    expect(unitProblems({ ...m, etcdUser: 'etcd' }, { ...ok, user: '996' })).toEqual([])
    expect(unitProblems(m, env({ ETCD_WAL_DIR: '/var/lib/etcd//member/wal' }))).toEqual([])
    expect(listen('https://10.0.0.2:2379')).toHaveLength(1)
    expect(unitProblems(m, { ...ok, env: { ...ok.env, ETCD_KEY_FILE: '/gone.pem' }, envFrom: { ...ok.envFrom, ETCD_KEY_FILE: 'Environment=' }, tls: state }).join()).toMatch(/^etcd's etcd is told to use \/gone\.pem \(ETCD_KEY_FILE in Environment=\), which does not exist: it could not start$/)
    expect(unitProblems(m, { ...ok, exec: { path: '/opt/etcd/etcd', missing: true } })).toEqual(['etcd runs /opt/etcd/etcd, which is not there or not executable: systemd could not start it'])
    // Another etcd than the one preflight checked: its version must be the same.
    const v = parseVersion('etcd Version: 3.5.16')
    expect(unitProblems(m, { ...ok, exec: { path: '/opt/etcd/etcd', missing: false, version: 'etcd Version: 3.5.16' } }, v)).toEqual([])
    expect(unitProblems(m, { ...ok, exec: { path: '/opt/etcd/etcd', missing: false, version: 'etcd Version: 3.4.23' } }, v)).toEqual([
      'etcd runs /opt/etcd/etcd, etcd 3.4.23, but the etcd checked here is 3.5.16: the restore must be made for the etcd that will run on it; set etcd_bin_dir to /opt/etcd, then run again',
    ])
    expect(unitProblems(m, { ...ok, exec: { path: '/opt/etcd/etcd', missing: false, version: 'Segmentation fault' } }, v).join()).toMatch(/^etcd runs \/opt\/etcd\/etcd, which did not say its etcd version \("Segmentation fault"\)/)
  })

  it('refuses a unit systemd has not loaded, saying how to go on, before anything changes', () => {
    const m = member(1, { service: 'systemd' })
    const sd = (unit?: HostFacts['unit']) => hostProblems({ ...base, member: m, facts: facts({ has: { sha256sum: true, setsid: true, systemctl: true }, unit }) }).join('\n')
    const unit = (loadState: string, fileState = '') => ({ loadState, fileState, active: 'inactive', held: false })
    expect(sd(unit('not-found'))).toBe('systemd unit etcd not found (set etcd_service_name?)')
    expect(sd(unit('masked', 'masked'))).toMatch(/^etcd is masked, so it could not be started after the restore: unmask it \(systemctl unmask etcd\), then run again/)
    expect(sd(unit('masked', 'masked-runtime'))).toMatch(/unmask it \(systemctl unmask --runtime etcd\)/)
    expect(sd(unit('bad-setting'))).toMatch(/^systemd has not loaded etcd \(LoadState=bad-setting\), so it could not be started after the restore: systemctl status etcd says why/)
    expect(sd(undefined)).toMatch(/^systemctl show etcd printed nothing: is systemd this host's init/)
    expect(sd(unit('loaded'))).toBe('')
  })

  it('refuses a port another process listens on, not this member\'s etcd (which the run stops)', () => {
    const lines = [
      'LISTEN 0      4096   198.18.7.11:2380      0.0.0.0:*    users:(("etcd",pid=812,fd=7))',
      'LISTEN 0      128    [::]:2379     [::]:*    users:(("haproxy",pid=90,fd=5),("haproxy",pid=91,fd=5))',
      'LISTEN 0      128    127.0.0.1:2379     0.0.0.0:*',
    ]
    // A socket tied to one interface: its zone goes, then the brackets.
    expect(parseListeners(['LISTEN 0 128 [::]%eth0:2380 [::]:* users:(("nc",pid=5,fd=3))', 'LISTEN 0 128 [fe80::1]%eth0:2380 [::]:* users:(("nc",pid=6,fd=3))'])).toEqual([
      { address: '::', port: 2380, comm: 'nc', pid: 5 }, { address: 'fe80::1', port: 2380, comm: 'nc', pid: 6 },
    ])
    const listeners = parseListeners(lines)
    expect(listeners).toEqual([{ address: '198.18.7.11', port: 2380, comm: 'etcd', pid: 812 }, { address: '::', port: 2379, comm: 'haproxy', pid: 90 }, { address: '::', port: 2379, comm: 'haproxy', pid: 91 }])
    expect(hostProblems({ ...base, facts: facts({ pids: [812], listeners }) })).toEqual([
      'port 2379 on :: is taken by haproxy (pid 90), not by this member\'s etcd: the restored etcd could not listen there; stop it, then run again',
      'port 2379 on :: is taken by haproxy (pid 91), not by this member\'s etcd: the restored etcd could not listen there; stop it, then run again',
    ])
    expect(hostProblems({ ...base, facts: facts({ pids: [812], listeners: listeners.slice(0, 1) }) })).toEqual([])
    // The member's own address counts; another (loopback, here) does not overlap with it.
    const at = (address: string) => [{ address, port: 2380, comm: 'python3', pid: 7 }]
    expect(hostProblems({ ...base, facts: facts({ listeners: at('198.18.7.11') }) }).join()).toMatch(/^port 2380 on 198\.18\.7\.11 is taken by python3 \(pid 7\)/)
    expect(hostProblems({ ...base, facts: facts({ listeners: at('127.0.0.1') }) })).toEqual([])
    // An etcd on the port is this member's (found by its port; it may have started after the PIDs were read).
    expect(hostProblems({ ...base, facts: facts({ listeners: [{ address: '198.18.7.11', port: 2380, comm: 'etcd', pid: 8 }] }) })).toEqual([])
    // A plain process also listens on loopback for clients; a unit where its listen URLs say.
    const client = (address: string) => [{ address, port: 2379, comm: 'nc', pid: 9 }]
    expect(hostProblems({ ...base, facts: facts({ listeners: client('127.0.0.1') }) })).toHaveLength(1)
    const sd = member(1, { service: 'systemd' })
    const unitConfig: UnitConfig = { user: '', restart: 'always', execArgs: ['/e'], env: { ETCD_LISTEN_CLIENT_URLS: 'http://198.18.7.11:2379,http://127.0.0.1:2379' }, envFrom: {}, envFiles: [], envFilesMissing: [], exec: { path: '/e', missing: false }, tls: { missing: [], unreadable: [], notFile: [], expired: [] }, refuseManual: { start: false, stop: false }, needsReload: false, loaded: [] }
    const sdFacts = (listeners: HostFacts['listeners'], u = unitConfig) => facts({ has: { sha256sum: true, setsid: true, systemctl: true }, unit: { loadState: 'loaded', fileState: 'enabled', active: 'active', held: false }, unitConfig: u, listeners })
    expect(hostProblems({ ...base, member: sd, facts: sdFacts(client('127.0.0.1')) })).toHaveLength(1)
    expect(hostProblems({ ...base, member: sd, facts: sdFacts(client('127.0.0.1'), { ...unitConfig, env: {} }) })).toEqual([])
    // A member that listens on every address (its URL's host a wildcard) overlaps with any.
    expect(hostProblems({ ...base, member: member(1, { peerUrl: 'http://0.0.0.0:2380' }), facts: facts({ listeners: at('127.0.0.1') }) })).toHaveLength(1)
    // A name is listened on as 0.0.0.0 (process.ts): it overlaps with any address.
    expect(hostProblems({ ...base, member: member(1, { peerUrl: 'http://etcd1.example:2380' }), facts: facts({ listeners: at('127.0.0.1') }) })).toHaveLength(1)
    // localhost, the one name etcd binds, is loopback only; an IPv4-mapped address is that address.
    const local = { ...unitConfig, env: { ETCD_LISTEN_CLIENT_URLS: 'http://localhost:2379' } }
    const sdLocal = { ...sd, clientUrl: 'http://127.0.0.1:2379' }
    // Go listens on localhost's first IPv4 address: 127.0.0.1, not ::1 or the rest of 127/8.
    expect(hostProblems({ ...base, member: sdLocal, facts: sdFacts(client('127.0.0.1'), local) }).join()).toMatch(/^port 2379 on 127\.0\.0\.1 is taken by nc/)
    expect(hostProblems({ ...base, member: sdLocal, facts: sdFacts(client('::1'), local) })).toEqual([])
    expect(hostProblems({ ...base, member: sdLocal, facts: sdFacts(client('127.0.0.2'), local) })).toEqual([])
    expect(hostProblems({ ...base, member: sdLocal, facts: sdFacts(client('198.18.7.11'), local) })).toEqual([])
    // A client URL that is a name is taken to agree; [::1] is not where localhost listens.
    expect(hostProblems({ ...base, member: { ...sd, clientUrl: 'http://etcd1.example:2379' }, facts: sdFacts([], local) })).toEqual([])
    expect(hostProblems({ ...base, member: { ...sd, clientUrl: 'http://[::1]:2379' }, facts: sdFacts([], local) }).join()).toMatch(/listens for clients on http:\/\/localhost:2379/)
    // A plain process on localhost listens on every address (process.ts), as for any name.
    expect(hostProblems({ ...base, member: member(1, { peerUrl: 'http://localhost:2380' }), facts: facts({ listeners: at('198.18.7.11') }) })).toHaveLength(1)
    expect(hostProblems({ ...base, member: sd, facts: sdFacts([], local) }).join()).toMatch(/listens for clients on http:\/\/localhost:2379 \(ETCD_LISTEN_CLIENT_URLS in the environment\), not on http:\/\/198\.18\.7\.11:2379/)
    expect(hostProblems({ ...base, facts: facts({ listeners: at('::ffff:198.18.7.11') }) })).toHaveLength(1)
    expect(hostProblems({ ...base, facts: facts({ listeners: at('::ffff:198.18.7.12') }) })).toEqual([])
  })

  it('passes a ready host', () => {
    expect(hostProblems({ ...base, facts: facts() })).toEqual([])
  })

  it('names each problem', () => {
    expect(hostProblems({ ...base, facts: facts({ bins: {}, version: undefined, toolVersions: {} }) }).join()).toMatch(/etcd binary not found on PATH or in \/usr\/local\/bin.*etcdctl not found/)
    // Needed on every version: the survivor guard reads a running member's revision with it.
    expect(hostProblems({ ...base, facts: facts({ bins: { etcd: '/e', etcdutl: '/u' }, version: parseVersion('etcd Version: 3.5.16'), toolVersions: {} }) }).join()).toMatch(/etcdctl not found .*\(needed to read a running member's revision before anything changes/)
    expect(hostProblems({ ...base, facts: facts({ toolVersions: { etcd: '3.4.23', etcdctl: '3.5.1' } }) }).join()).toMatch(/etcdctl is 3.5.1 but etcd is 3.4.23: a mixed install/)
    expect(hostProblems({ ...base, bumpRevision: 1000, facts: facts() }).join()).toMatch(/--bump-revision needs etcd 3.4.27, 3.5.10 or newer; this host has 3.4.23/)
    expect(hostProblems({ ...base, facts: facts({ parent: { exists: true, writable: true, freeBytes: 150 * 2 ** 20 } }) }).join()).toMatch(/not enough free space next to the data dir: 150 MiB free, 290 MiB needed/)
    expect(hostProblems({ ...base, facts: facts({ parent: { exists: true, writable: false, freeBytes: 2 ** 40 } }) }).join()).toMatch(/not writable/)
    expect(hostProblems({ ...base, member: member(1, { service: 'systemd' }), facts: facts() }).join()).toMatch(/systemctl is not found/)
  })

  it('counts restore dirs an earlier run left as room for the restore, which removes them, but not for the copy before it', () => {
    // 100 MiB snapshot: the copy needs 110 MiB, the restore 180, 290 in all.
    const stale = [{ path: '/var/lib/.etcd-rescue-etcd/restore-etcd-rescue-20260101t000000z-aaaaaa', bytes: 170 * 2 ** 20 }]
    const at = (freeMiB: number, staleRestores = stale) => hostProblems({ ...base, facts: facts({ parent: { exists: true, writable: true, freeBytes: freeMiB * 2 ** 20 }, staleRestores }) }).join('\n')
    expect(at(150)).toBe('')
    expect(at(150, [])).toMatch(/not enough free space next to the data dir: 150 MiB free, 290 MiB needed$/)
    expect(at(100)).toBe(`not enough free space next to the data dir: 270 MiB free, 290 MiB needed; 170 MiB of it held by restore dirs an earlier run left (${stale[0].path}), which this run's restore removes`)
    // Room enough with them gone, but not for the copy, which comes first.
    const big = [{ ...stale[0], bytes: 200 * 2 ** 20 }]
    expect(at(120, big)).toBe('')
    expect(at(105, big)).toBe(`not enough free space next to the data dir for the snapshot's copy: 105 MiB free, 110 MiB needed; the restore dirs an earlier run left (${stale[0].path}) are removed only after the copy: remove them, then run again`)
    // With the snapshot already in place there is no copy to make room for first.
    const inPlace = (freeMiB: number) => hostProblems({ ...base, facts: facts({ parent: { exists: true, writable: true, freeBytes: freeMiB * 2 ** 20 }, snapshot: { size: snapshot.size, sha256: snapshot.sha256 }, staleRestores: big }) }).join('\n')
    expect(inPlace(5)).toBe('')
    // In the work dir, they are on the parent's disk even when the data dir is a mount point
    // (where the parent's disk holds only the copy: the restore is written on the data dir's).
    const mountedFacts = (parentMiB: number, staleRestores = stale) => facts({ dataDir: { exists: true, entries: 1, hasMember: true, mountpoint: true, freeBytes: 10 * 2 ** 30 }, parent: { exists: true, writable: true, freeBytes: parentMiB * 2 ** 20 }, staleRestores })
    expect(hostProblems({ ...base, facts: mountedFacts(120, []) }).join('\n')).toBe('')
    expect(hostProblems({ ...base, facts: mountedFacts(100, []) }).join('\n')).toBe('not enough free space next to the data dir: 100 MiB free, 110 MiB needed')
    expect(hostProblems({ ...base, facts: mountedFacts(100) }).join('\n')).toMatch(/^not enough free space next to the data dir for the snapshot's copy: 100 MiB free, 110 MiB needed; the restore dirs an earlier run left/)
    // Inside a data dir that is a mount point, they are on the data dir's disk.
    const inside = [{ path: '/var/lib/etcd/.etcd-rescue-restore-etcd-rescue-20260101t000000z-aaaaaa', bytes: 170 * 2 ** 20 }]
    const mounted = (freeMiB: number) => hostProblems({ ...base, facts: facts({ dataDir: { exists: true, entries: 1, hasMember: true, mountpoint: true, freeBytes: freeMiB * 2 ** 20 }, staleRestores: inside }) }).join('\n')
    expect(mounted(100)).toBe('')
    expect(mounted(5)).toBe(`not enough free space on the data dir's disk: 175 MiB free, 180 MiB needed; 170 MiB of it held by restore dirs an earlier run left (${inside[0].path}), which this run's restore removes`)
  })

  it('counts a snapshot already in place as space not needed again', () => {
    expect(spaceNeeded(100, true).parent).toBeLessThan(spaceNeeded(100, false).parent)
    // A data dir that is a mount point takes the restore on its own disk: its parent holds the copy only.
    const mib = 2 ** 20
    expect(spaceNeeded(100 * mib, false, true)).toEqual({ parent: Math.ceil(100 * mib * 1.1), data: spaceNeeded(100 * mib, false).data, copy: Math.ceil(100 * mib * 1.1) })
    expect(spaceNeeded(100 * mib, true, true).parent).toBe(0)
  })

  it('refuses mixed versions across hosts', () => {
    expect(clusterProblems([{ name: 'a', version: '3.4.23' }, { name: 'b', version: '3.4.23' }])).toEqual([])
    expect(clusterProblems([{ name: 'a', version: '3.4.23' }, { name: 'b', version: '3.5.16' }])[0]).toMatch(/3.4.23 on a; 3.5.16 on b/)
  })
})

describe('buildPlan', () => {
  const members = [1, 2, 3].map((i) => member(i))
  const all = new Map(members.map((m) => [m.name, facts()]))

  it('gives every member the same initial cluster and token, and predicts the IDs', () => {
    const plan = buildPlan(members, all, snapshot, { token: 'tok', stamp: '20260101T000000Z' })
    expect(plan.initialCluster).toBe('etcd1=http://198.18.7.11:2380,etcd2=http://198.18.7.12:2380,etcd3=http://198.18.7.13:2380')
    expect(plan.tokenSource).toBe('given')
    const ids = members.map((m) => memberId([m.peerUrl], 'tok'))
    expect(plan.members.map((m) => m.memberId)).toEqual(ids.map(String))
    expect(plan.clusterId).toBe(clusterId(ids).toString())
    for (const m of plan.members) {
      expect(m.scripts.restore.text).toContain(`--initial-cluster ${plan.initialCluster}`)
      expect(m.scripts.restore.text).toContain('--initial-cluster-token tok')
      expect(m.scripts.restore.text).toContain(`--name ${m.name}`)
      expect(m.scripts.restore.text).toContain(`--initial-advertise-peer-urls ${m.peerUrl}`)
      expect(m.restoreTool).toBe('etcdctl')
      expect(m.paths.aside).toBe('/var/lib/etcd.etcd-rescue-old-20260101T000000Z')
      // The snapshot's hash is not checked twice on the host: the script's own check of the whole
      // file's SHA-256 (or of the identity recorded when the upload checked it) comes before etcd's restore.
      const script = m.scripts.restore.text
      expect(script).toContain('--skip-hash-check')
      expect(script.indexOf(`verified $sha $(file_id "$S")`)).toBeGreaterThan(-1)
      expect(script.indexOf('[ "$(hash_file "$S")" != "$sha" ]')).toBeLessThan(script.indexOf('snapshot restore'))
    }
  })

  it('makes a fresh token per run, and reuses an interrupted run\'s token for the same snapshot', () => {
    const a = buildPlan(members, all, snapshot, { stamp: timeStamp() })
    const b = buildPlan(members, all, snapshot, { stamp: timeStamp() })
    expect(a.tokenSource).toBe('new')
    expect(a.token).not.toBe(b.token)
    const resumed = new Map(all)
    resumed.set('etcd2', facts({ restored: { sha256: snapshot.sha256, token: 'earlier' } }))
    const c = buildPlan(members, resumed, snapshot, { stamp: timeStamp() })
    expect(c.token).toBe('earlier')
    expect(c.tokenSource).toBe('resumed')
    expect(c.members[1].resume.alreadyRestored).toBe(true)
    expect(c.members[0].resume.alreadyRestored).toBe(false)
    expect(resumableToken([facts({ restored: { sha256: 'other', token: 'x' } })], snapshot.sha256)).toBeUndefined()
  })

  it('uses etcdutl on 3.5 and adds --bump-revision with --mark-compacted', () => {
    const f35 = facts({ bins: { etcd: '/usr/local/bin/etcd', etcdctl: '/usr/local/bin/etcdctl', etcdutl: '/usr/local/bin/etcdutl' }, version: parseVersion('etcd Version: 3.5.16') })
    const plan = buildPlan(members, new Map(members.map((m) => [m.name, f35])), snapshot, { token: 't', stamp: 's', bumpRevision: 1_000_000_000 })
    expect(plan.members[0].restoreTool).toBe('etcdutl')
    expect(plan.members[0].scripts.restore.text).toContain('/usr/local/bin/etcdutl snapshot restore')
    expect(plan.members[0].scripts.restore.text).toContain('--bump-revision 1000000000 --mark-compacted')
  })

  it('gives a systemd member\'s arm of the hold, in its restore and its stop, the unit as preflight read it', () => {
    const loaded = ['DropInPaths=', 'ExecStart={ path=/usr/local/bin/etcd ; argv[]=/usr/local/bin/etcd ; ignore_errors=no }', 'FragmentPath=/etc/systemd/system/etcd.service', 'User=etcd']
    const unitConfig: UnitConfig = { user: 'etcd', restart: 'always', execArgs: ['/usr/local/bin/etcd'], env: {}, envFrom: {}, envFiles: [], envFilesMissing: [], exec: { path: '/usr/local/bin/etcd', missing: false }, tls: { missing: [], unreadable: [], notFile: [], expired: [] }, refuseManual: { start: false, stop: false }, needsReload: false, loaded }
    const sd = members.map((m) => ({ ...m, service: 'systemd' as const }))
    const plan = buildPlan(sd, new Map(sd.map((m) => [m.name, facts({ unitConfig })])), snapshot, { token: 't', stamp: 's' })
    const value = `P='${loaded.join('\n')}'`
    for (const m of plan.members) {
      expect(m.scripts.restore.text).toContain(value)
      expect(m.scripts.stop.text).toContain(value)
    }
    // A plain process has no unit to compare.
    const plain = buildPlan(members, all, snapshot, { token: 't', stamp: 's' })
    expect(plain.members[0].scripts.restore.text).not.toContain('unit_loaded')
  })

  it('skips the copy where the same snapshot is already on the host', () => {
    const f = new Map(all)
    f.set('etcd3', facts({ snapshot: { size: snapshot.size, sha256: snapshot.sha256 } }))
    const plan = buildPlan(members, f, snapshot, { token: 't', stamp: 's' })
    expect(plan.members.map((m) => m.resume.snapshotInPlace)).toEqual([false, false, true])
  })
})

describe('TLS', () => {
  it('refuses to start a TLS member as a bare process', () => {
    const m = member(1, { peerUrl: 'https://10.0.0.1:2380', clientUrl: 'https://10.0.0.1:2379' })
    expect(hostProblems({ member: m, facts: facts(), snapshotSize: 1, snapshotSha: 'x' }).join()).toMatch(/process with https URLs/)
  })
})

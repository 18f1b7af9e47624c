// Preflight's read of a systemd member's unit, run for real under each /bin/sh
// etcd-rescue meets, with a stand-in systemctl on PATH that prints what
// systemd 252 prints for `systemctl show` (its own order of properties, not the
// order asked) and records how it was called.
import { describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseFacts, probeScript } from '../../lib/plan/facts.ts'
import { unitProblems } from '../../lib/plan/checks.ts'
import { SHELLS, available } from '../support/shells.ts'
import { hasOpenssl, makeCerts } from '../support/certs.ts'

/** A host whose systemctl prints `show` (nothing: systemd is not running) and logs each call. */
function host(show: string, extra: Partial<Parameters<typeof probeScript>[0]> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'unit-probe-'))
  const tools = join(dir, 'bin')
  mkdirSync(tools)
  writeFileSync(join(dir, 'show'), show)
  writeFileSync(join(tools, 'systemctl'), `#!/bin/sh
echo "$*" >> ${dir}/calls
[ -s ${dir}/show ] || { echo "System has not been booted with systemd as init system (PID 1). Can't operate." >&2; exit 1; }
cat ${dir}/show
`)
  chmodSync(join(tools, 'systemctl'), 0o755)
  writeFileSync(join(dir, 'etcd.env'), '# kubespray\nETCD_DATA_DIR=/var/lib/etcd\nETCD_NAME=etcd1\n')
  // The etcd the unit runs: not on PATH, so not the one preflight finds and checks.
  mkdirSync(join(dir, 'opt'))
  writeFileSync(join(dir, 'opt', 'etcd'), '#!/bin/sh\necho "etcd Version: 3.5.30"\n')
  chmodSync(join(dir, 'opt', 'etcd'), 0o755)
  const script = probeScript({
    dataDir: join(dir, 'etcd'), work: join(dir, '.etcd-rescue-etcd'), snapshot: join(dir, 'x.db'), snapshotSize: 1, snapshotSha: 'a'.repeat(64),
    ports: [65010, 65011], service: 'systemd', serviceName: 'etcd.service', ...extra,
  })
  const calls = () => readFileSync(join(dir, 'calls'), 'utf8').trim().split('\n')
  return { dir, tools, script, calls }
}

const loaded = (dir: string, envFile = join(dir, 'etcd.env')) => `Restart=always
ExecStart={ path=${dir}/opt/etcd ; argv[]=${dir}/opt/etcd ; ignore_errors=no ; start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }
Environment=GOMAXPROCS=2
EnvironmentFiles=/etc/etcd-missing.env (ignore_errors=yes)
EnvironmentFiles=${envFile} (ignore_errors=no)
User=nobody
RefuseManualStart=no
RefuseManualStop=yes
FragmentPath=/etc/systemd/system/etcd.service
DropInPaths=/run/systemd/system/etcd.service.d/zz-etcd-rescue-hold.conf /etc/systemd/system/etcd.service.d/10-limits.conf
LoadState=loaded
ActiveState=failed
UnitFileState=enabled
`

describe.each(SHELLS)('the probe reading a systemd unit, under %s', (_name, shell) => {
  const run = (h: ReturnType<typeof host>) => {
    // Globbing must be on again after the unit's part (later probe code globs /proc/[0-9]*).
    const r = spawnSync(shell[0], [...shell.slice(1), '-c', `${h.script.text}\ncase $- in *f*) echo glob.off=1 ;; esac`], { encoding: 'utf8', env: { ...process.env, PATH: `${h.tools}:${process.env.PATH}` } })
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).not.toContain('glob.off=1')
    return parseFacts(r.stdout)
  }

  it.skipIf(!available(shell))('reads state, User=, ExecStart and every environment file with one systemctl call', () => {
    const h = host('')
    writeFileSync(join(h.dir, 'show'), loaded(h.dir))
    const f = run(h)
    expect(h.calls()).toEqual(['show -p LoadState -p UnitFileState -p ActiveState -p NeedDaemonReload -p Restart -p RefuseManualStop -p ExecStart -p Environment -p EnvironmentFiles -p User -p RefuseManualStart -p FragmentPath -p DropInPaths -- etcd.service'])
    expect(f.unit).toEqual({ loadState: 'loaded', fileState: 'enabled', active: 'failed', held: false })
    expect(f.unitConfig).toEqual({
      user: 'nobody', restart: 'always', execArgs: [join(h.dir, 'opt', 'etcd')],
      exec: { path: join(h.dir, 'opt', 'etcd'), missing: false, version: 'etcd Version: 3.5.30' },
      env: { GOMAXPROCS: '2', ETCD_DATA_DIR: '/var/lib/etcd', ETCD_NAME: 'etcd1' },
      envFrom: { GOMAXPROCS: 'Environment=', ETCD_DATA_DIR: join(h.dir, 'etcd.env'), ETCD_NAME: join(h.dir, 'etcd.env') },
      envFiles: ['/etc/etcd-missing.env', join(h.dir, 'etcd.env')],
      // That one is optional (`-` in the unit): systemd starts without it.
      envFilesMissing: [],
      tls: { missing: [], unreadable: [], notFile: [], expired: [] },
      refuseManual: { start: false, stop: true },
      needsReload: false,
      // What the hold compares after its own reload: sorted, ExecStart without its
      // runtime fields, the hold's own drop-in (an earlier run's) left out.
      loaded: [
        'DropInPaths=/etc/systemd/system/etcd.service.d/10-limits.conf',
        'Environment=GOMAXPROCS=2',
        'EnvironmentFiles=/etc/etcd-missing.env (ignore_errors=yes)',
        `EnvironmentFiles=${join(h.dir, 'etcd.env')} (ignore_errors=no)`,
        `ExecStart={ path=${h.dir}/opt/etcd ; argv[]=${h.dir}/opt/etcd ; ignore_errors=no }`,
        'FragmentPath=/etc/systemd/system/etcd.service',
        'RefuseManualStart=no',
        'User=nobody',
      ],
    })
    // The unit's User= is who must own the restored data.
    expect(f.etcdUser).toEqual({ name: 'nobody', exists: true })
  })

  it.skipIf(!available(shell))('names an environment file the unit needs that is not there', () => {
    const h = host('')
    writeFileSync(join(h.dir, 'show'), loaded(h.dir, join(h.dir, 'gone.env')))
    expect(run(h).unitConfig?.envFilesMissing).toEqual([join(h.dir, 'gone.env')])
  })

  it.skipIf(!available(shell) || !hasOpenssl)('checks every TLS file the unit names; those etcd takes decide', () => {
    const h = host('')
    const c = makeCerts()
    const gone = join(h.dir, 'gone.pem')
    writeFileSync(join(h.dir, 'etcd.env'), `ETCD_NAME=etcd1\nETCD_PEER_CERT_FILE="${c.expired}"\nexport ETCD_TRUSTED_CA_FILE=${c.valid}\n`)
    writeFileSync(join(h.dir, 'show'), loaded(h.dir)
      .replace(`argv[]=${h.dir}/opt/etcd ;`, `argv[]=${h.dir}/opt/etcd --cert-file=${c.valid} -peer-key-file ${c.key} ;`)
      .replace('Environment=GOMAXPROCS=2', `Environment=ETCD_CERT_FILE=${gone} GOMAXPROCS=2`)
      .replace('RefuseManualStop=yes', 'RefuseManualStop=no'))
    const f = run(h)
    expect(f.unitConfig?.tls).toEqual({ missing: [gone], unreadable: [], notFile: [], expired: [{ file: c.expired, notAfter: 'Jan 1 00:00:00 2021 GMT' }] })
    // The missing file is overridden by --cert-file: only the expired peer certificate counts.
    const member = { name: 'etcd1', dataDir: '/var/lib/etcd', peerUrl: 'https://10.0.0.1:2380', clientUrl: 'https://10.0.0.1:2379', service: 'systemd' as const, serviceName: 'etcd.service' }
    expect(unitProblems(member, f.unitConfig!)).toEqual([
      `etcd.service's etcd is told to use ${c.expired} (ETCD_PEER_CERT_FILE in ${join(h.dir, 'etcd.env')}), which expired on Jan 1 00:00:00 2021 GMT (by this host's clock): restored members could not talk to each other or serve clients; renew the certificates, then run again`,
    ])
  })

  it.skipIf(!available(shell) || !hasOpenssl)('judges a certificate file that holds its chain by its leaf, and a CA bundle not by its first (the unit\'s and etcdctl\'s)', () => {
    const c = makeCerts()
    const twoOf = (name: string) => {
      const file = join(c.dir, name)
      writeFileSync(file, readFileSync(c.expired, 'utf8') + readFileSync(c.valid, 'utf8'))
      return file
    }
    const [chain, bundle, ctlChain, ctlBundle] = [twoOf('fullchain.pem'), twoOf('ca-bundle.pem'), twoOf('admin-chain.pem'), twoOf('admin-ca.pem')]
    const h = host('', { tls: { cacert: ctlBundle, cert: ctlChain, key: c.key } })
    writeFileSync(join(h.dir, 'etcd.env'), `ETCD_NAME=etcd1\nETCD_PEER_CERT_FILE=${chain}\nETCD_PEER_TRUSTED_CA_FILE=${bundle}\n`)
    writeFileSync(join(h.dir, 'show'), loaded(h.dir).replace('RefuseManualStop=yes', 'RefuseManualStop=no'))
    const f = run(h)
    const member = { name: 'etcd1', dataDir: '/var/lib/etcd', peerUrl: 'https://10.0.0.1:2380', clientUrl: 'https://10.0.0.1:2379', service: 'systemd' as const, serviceName: 'etcd.service' }
    expect(unitProblems(member, f.unitConfig!)).toEqual([
      `etcd.service's etcd is told to use ${chain} (ETCD_PEER_CERT_FILE in ${join(h.dir, 'etcd.env')}), which expired on Jan 1 00:00:00 2021 GMT (by this host's clock): restored members could not talk to each other or serve clients; renew the certificates, then run again`,
    ])
    expect(f.tls).toEqual({ missing: [], unreadable: [], notFile: [], expired: [{ file: ctlChain, notAfter: 'Jan 1 00:00:00 2021 GMT', bundle: true }] })
  })

  it.skipIf(!available(shell))('reads systemd 219\'s EnvironmentFile= (RHEL 7), a CRLF file, and a changed unit', () => {
    const h = host('')
    writeFileSync(join(h.dir, 'etcd.env'), 'ETCD_NAME=etcd1\r\nETCD_DATA_DIR=/var/lib/etcd\r\n')
    writeFileSync(join(h.dir, 'show'), loaded(h.dir).replace(/^EnvironmentFiles=/gm, 'EnvironmentFile=').replace('UnitFileState=enabled', 'UnitFileState=enabled\nNeedDaemonReload=yes'))
    const u = run(h).unitConfig!
    expect(u.envFiles).toEqual(['/etc/etcd-missing.env', join(h.dir, 'etcd.env')])
    expect(u.env).toMatchObject({ ETCD_NAME: 'etcd1', ETCD_DATA_DIR: '/var/lib/etcd' })
    expect(u.needsReload).toBe(true)
    writeFileSync(join(h.dir, 'show'), loaded(h.dir, join(h.dir, 'gone.env')).replace(/^EnvironmentFiles=/gm, 'EnvironmentFile='))
    expect(run(h).unitConfig?.envFilesMissing).toEqual([join(h.dir, 'gone.env')])
    // A wildcard is systemd's to expand: not called missing.
    writeFileSync(join(h.dir, 'show'), loaded(h.dir, '/etc/etcd/*.env'))
    expect(run(h).unitConfig?.envFilesMissing).toEqual([])
  })

  it.skipIf(!available(shell))('checks TLS flags passed through a variable (ExecStart=etcd $DAEMON_ARGS)', () => {
    const h = host('')
    const gone = join(h.dir, 'gone.pem')
    writeFileSync(join(h.dir, 'etcd.env'), `DAEMON_ARGS="--name etcd1 --peer-cert-file ${gone}"\r\n`)
    writeFileSync(join(h.dir, 'show'), loaded(h.dir).replace(`argv[]=${h.dir}/opt/etcd ;`, `argv[]=${h.dir}/opt/etcd $DAEMON_ARGS ;`).replace('RefuseManualStop=yes', 'RefuseManualStop=no'))
    const u = run(h).unitConfig!
    expect(u.tls.missing).toEqual([gone])
    const member = { name: 'etcd1', dataDir: '/var/lib/etcd', peerUrl: 'https://10.0.0.1:2380', clientUrl: 'https://10.0.0.1:2379', service: 'systemd' as const, serviceName: 'etcd.service' }
    expect(unitProblems(member, u)).toEqual([`etcd.service's etcd is told to use ${gone} (--peer-cert-file in ExecStart), which does not exist: it could not start`])
  })

  it.skipIf(!available(shell))('names a binary ExecStart runs that is not there', () => {
    const h = host('')
    writeFileSync(join(h.dir, 'show'), loaded(h.dir).replaceAll(`${h.dir}/opt/etcd`, `${h.dir}/opt/gone/etcd`))
    expect(run(h).unitConfig?.exec).toEqual({ path: join(h.dir, 'opt', 'gone', 'etcd'), missing: true })
  })

  it.skipIf(!available(shell))('a masked unit is read as masked, with no configuration, and refused', () => {
    const h = host('Restart=no\nExecStart=\nUser=\nLoadState=masked\nActiveState=inactive\nUnitFileState=masked-runtime\n')
    const f = run(h)
    expect(f.unit).toEqual({ loadState: 'masked', fileState: 'masked-runtime', active: 'inactive', held: false })
    expect(f.unitConfig).toBeUndefined()
    expect(f.etcdUser).toBeUndefined()
  })

  it.skipIf(!available(shell))('a host whose systemctl cannot reach systemd gives no unit at all', () => {
    const f = run(host(''))
    expect(f.unit).toBeUndefined()
    expect(f.unitConfig).toBeUndefined()
  })
})

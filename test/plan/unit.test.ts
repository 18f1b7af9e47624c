import { describe, expect, it } from 'vitest'
import { parseEnvLine, parseUnitLines, parseUnitState, unitDisagreement, unitMember } from '../../lib/plan/unit.ts'

// What the probe prints for kubespray's etcd.service (systemctl show, then /etc/etcd.env).
const KUBESPRAY = [
  'unit.show.LoadState=loaded',
  'unit.show.User=etcd',
  'unit.show.Restart=always',
  'unit.show.ExecStart={ path=/usr/local/bin/etcd ; argv[]=/usr/local/bin/etcd ; ignore_errors=no ; start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }',
  'unit.show.Environment=',
  'unit.envfile=/etc/etcd.env',
  'unit.envline=# Environment file for etcd',
  'unit.envline=ETCD_DATA_DIR=/var/lib/etcd',
  'unit.envline=ETCD_INITIAL_ADVERTISE_PEER_URLS=https://10.0.0.1:2380',
  'unit.envline=ETCD_NAME=etcd1',
]

describe('the unit is the truth', () => {
  it('reads User=, Restart= and the environment file', () => {
    const u = parseUnitLines(KUBESPRAY)!
    expect(u).toMatchObject({ user: 'etcd', restart: 'always', execArgs: ['/usr/local/bin/etcd'], envFiles: ['/etc/etcd.env'] })
    expect(unitMember(u)).toMatchObject({ name: 'etcd1', dataDir: '/var/lib/etcd', peerUrl: 'https://10.0.0.1:2380' })
  })

  it('lets ExecStart flags win over the environment, and expands $VARS in ExecStart', () => {
    const u = parseUnitLines([
      'unit.show.LoadState=loaded',
      'unit.show.ExecStart={ path=/usr/bin/etcd ; argv[]=/usr/bin/etcd --data-dir=/srv/etcd $DAEMON_ARGS ; ignore_errors=no }',
      'unit.show.Environment=DAEMON_ARGS=--name\\x20x ETCD_NAME=fromenv',
      'unit.envline=DAEMON_ARGS="--name e9"',
      'unit.envline=ETCD_DATA_DIR=/var/lib/etcd',
    ])!
    expect(unitMember(u)).toMatchObject({ name: 'e9', dataDir: '/srv/etcd', from: { dataDir: '--data-dir in ExecStart', name: '--name in ExecStart' } })
    // Each value says where it was set: Environment=, or the file it was read from.
    const v = unitMember(parseUnitLines(['unit.show.LoadState=loaded', 'unit.show.Environment=ETCD_NAME=a ETCD_WAL_DIR=/w', 'unit.envfile=/etc/etcd.env', 'unit.envline=ETCD_NAME=b'])!)
    expect(v).toMatchObject({ name: 'b', from: { name: 'ETCD_NAME in /etc/etcd.env' }, walDir: { value: '/w', from: 'ETCD_WAL_DIR in Environment=' } })
  })

  it('is undefined when the unit was not read, or systemd has not loaded it', () => {
    expect(parseUnitLines([])).toBeUndefined()
    expect(parseUnitState([])).toBeUndefined()
    for (const state of ['not-found', 'masked', 'bad-setting']) {
      const lines = [`unit.show.LoadState=${state}`, 'unit.show.ExecStart=', 'unit.show.ActiveState=inactive']
      expect(parseUnitLines(lines)).toBeUndefined()
      expect(parseUnitState(lines)).toEqual({ loadState: state, fileState: '', active: 'inactive' })
    }
    expect(parseUnitState([...KUBESPRAY, 'unit.show.UnitFileState=enabled', 'unit.show.ActiveState=failed'])).toEqual({ loadState: 'loaded', fileState: 'enabled', active: 'failed' })
  })

  it('parses environment file lines as systemd does (comments, quotes, export)', () => {
    expect(parseEnvLine('; comment')).toBeUndefined()
    expect(parseEnvLine("ETCD_NAME='etcd 1'")).toEqual(['ETCD_NAME', 'etcd 1'])
    expect(parseEnvLine('export A = b')).toEqual(['A', 'b'])
    expect(parseEnvLine('not a line')).toBeUndefined()
  })

  it('shows a diff when the unit would run another data dir, and none when they agree', () => {
    const unit = unitMember(parseUnitLines(KUBESPRAY)!)
    const inv = { name: 'etcd1', dataDir: '/var/lib/etcd', peerUrl: 'https://10.0.0.1:2380' }
    expect(unitDisagreement(inv, unit, 'etcd')).toEqual([])
    expect(unitDisagreement({ ...inv, dataDir: '/srv/etcd' }, unit, 'etcd')).toEqual([
      '--- inventory',
      '+++ unit etcd',
      '- data dir: /srv/etcd',
      '+ data dir: /var/lib/etcd   (ETCD_DATA_DIR in /etc/etcd.env)',
    ])
  })
})

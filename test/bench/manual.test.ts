// The expert's by-hand script the bench measures etcd-rescue against: what it
// types on plain hosts and on hosts as kubespray makes them (systemd, TLS, sudo).
// Built here and checked as text and by bash -n; the bench runs it on labs.
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { loadInventory } from '../../lib/inventory/load.ts'
import { membersOf } from '../../lib/inventory/members.ts'
import { tlsFor } from '../../lib/etcd/tls.ts'
import { manualScript } from '../../lib/bench/manual.ts'

const fixture = (p: string) => fileURLToPath(new URL(`../fixtures/inventory/${p}`, import.meta.url))
const parses = (script: string) => spawnSync('bash', ['-n'], { input: script, encoding: 'utf8' })
/** The commands alone, without the comments that say what each step is. */
const commands = (script: string) => script.split('\n').filter((l) => !l.startsWith('#')).join('\n')

describe('manualScript', () => {
  it('on kubespray hosts: sudo, systemctl stop and start of the unit, the restore given to the unit\'s user, etcdctl with the TLS files', () => {
    const members = membersOf(loadInventory(fixture('kubespray/inventory.ini'))).members
    expect(members[0].service).toBe('systemd')
    expect(members[0].ssh.become).toBe(true)
    const script = manualScript({ members, snapshot: '/tmp/s.db', binDir: '/usr/local/bin', restoreWith: 'etcdutl', token: 't-1', controlDir: '/tmp/c', tls: tlsFor(members[0]) })
    expect(parses(script).status, parses(script).stderr).toBe(0)
    expect(script).toMatch(/sudo -n sh -c .*systemctl stop etcd/)
    expect(script).toMatch(/sudo -n sh -c .*systemctl start etcd/)
    expect(script).toMatch(/systemctl show -p User --value etcd/)
    expect(script).toMatch(/chown -R "\$u": "\$D\.new"/)
    expect(script).toMatch(/--cacert=\/etc\/ssl\/etcd\/ssl\/ca\.pem/)
    expect(script).toMatch(/--cert=\/etc\/ssl\/etcd\/ssl\/admin-node1\.pem/)
    expect(commands(script)).not.toMatch(/pkill/)
    // The copy itself needs no root: /var/tmp is the login user's too.
    expect(script).toMatch(/'cat > \/var\/tmp\/snapshot\.db' < \/tmp\/s\.db/)
  })

  it('quotes each remote step exactly twice: the login shell on the host hands sudo the very script', () => {
    const members = membersOf(loadInventory(fixture('kubespray/inventory.ini'))).members
    const script = manualScript({ members, snapshot: '/tmp/s.db', binDir: '/usr/local/bin', restoreWith: 'etcdutl', token: 't-1', controlDir: '/tmp/c', tls: tlsFor(members[0]) })
    const dir = mkdtempSync(join(tmpdir(), 'manual-quote-'))
    try {
      // ssh runs its last argument as the host's login shell would; sudo writes down what it was asked to run.
      mkdirSync(join(dir, 'bin'))
      writeFileSync(join(dir, 'bin', 'ssh'), '#!/bin/sh\nfor a; do last=$a; done\nexec sh -c "$last"\n', { mode: 0o755 })
      writeFileSync(join(dir, 'bin', 'sudo'), `#!/bin/sh\n[ "$1" = -n ] && shift\nprintf '%s\\0' "$@" > ${dir}/argv\n`, { mode: 0o755 })
      const lines = script.split('\n')
      const restore = lines.find((l) => l.startsWith('ssh ') && l.includes('95.54.0.13') && l.includes('snapshot restore'))!
      const r = spawnSync('bash', ['-c', restore.replace(/ & pids=.*$/, '')], { encoding: 'utf8', env: { ...process.env, PATH: `${dir}/bin:${process.env.PATH}` } })
      expect(r.status, r.stderr).toBe(0)
      const argv = readFileSync(join(dir, 'argv'), 'utf8').split('\0').slice(0, -1)
      expect(argv.slice(0, 2)).toEqual(['sh', '-c'])
      // What sudo's shell runs, word for word: the member's own name and URLs, the unit's user, the moves.
      expect(argv[2]).toBe([
        'D=/var/lib/etcd; rm -rf "$D.new" && /usr/local/bin/etcdutl snapshot restore /var/tmp/snapshot.db --name etcd2',
        ' --initial-cluster etcd1=https://10.3.0.1:2380,etcd2=https://10.3.0.2:2380,etcd3=https://10.3.0.3:2380 --initial-cluster-token t-1',
        ' --initial-advertise-peer-urls https://10.3.0.2:2380 --data-dir /var/lib/etcd.new >/dev/null 2>&1',
        ' && u=$(systemctl show -p User --value etcd) && { [ -z "$u" ] || chown -R "$u": "$D.new"; }',
        ' && mv "$D" "$D.old.$(date +%s)" && mv "$D.new" "$D"',
      ].join(''))
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('on plain hosts: TERM, wait and KILL by exact name, etcd started by hand, no sudo, no TLS flags', () => {
    const members = membersOf(loadInventory(fixture('basic/hosts.ini'))).members.map((m) => ({ ...m, service: 'process' as const, ssh: { ...m.ssh, become: false } }))
    const script = manualScript({ members, snapshot: '/tmp/s.db', binDir: '/usr/bin', restoreWith: 'etcdctl', token: 't-1', controlDir: '/tmp/c' })
    expect(parses(script).status, parses(script).stderr).toBe(0)
    expect(script).toMatch(/pkill -TERM -x etcd/)
    expect(script).toMatch(/setsid -f /)
    expect(commands(script)).not.toMatch(/sudo|systemctl|--cacert/)
  })
})

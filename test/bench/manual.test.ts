// The expert's by-hand script the bench measures etcd-rescue against: what it
// types on plain hosts and on hosts as kubespray makes them (systemd, TLS, sudo).
// Built here and checked as text and by bash -n; the bench runs it on labs.
import { spawnSync } from 'node:child_process'
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

  it('on plain hosts: TERM, wait and KILL by exact name, etcd started by hand, no sudo, no TLS flags', () => {
    const members = membersOf(loadInventory(fixture('basic/hosts.ini'))).members.map((m) => ({ ...m, service: 'process' as const, ssh: { ...m.ssh, become: false } }))
    const script = manualScript({ members, snapshot: '/tmp/s.db', binDir: '/usr/bin', restoreWith: 'etcdctl', token: 't-1', controlDir: '/tmp/c' })
    expect(parses(script).status, parses(script).stderr).toBe(0)
    expect(script).toMatch(/pkill -TERM -x etcd/)
    expect(script).toMatch(/setsid -f /)
    expect(commands(script)).not.toMatch(/sudo|systemctl|--cacert/)
  })
})

import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadInventory, membersOf, type Member } from '../../lib/inventory/members.ts'
import { inputError, load } from './helpers.ts'
import { tlsFor } from '../../lib/etcd/tls.ts'

const members = (text: string, group?: string) => membersOf(load({ 'hosts.ini': text }), group)
const one = (hostLine: string, vars = ''): Member => members(`[etcd]\n${hostLine}\n[etcd:vars]\n${vars}`).members[0]

describe('members of the etcd group', () => {
  it('applies the defaults: kubespray\'s, https on both URLs for a member under systemd', () => {
    const m = one('e1')
    expect(m).toMatchObject({
      inventoryHost: 'e1', name: 'etcd1', address: 'e1', peerUrl: 'https://e1:2380', clientUrl: 'https://e1:2379',
      dataDir: '/var/lib/etcd', service: 'systemd', serviceName: 'etcd',
      ssh: { host: 'e1', port: 22, become: false },
    })
    expect(m.binDir).toBeUndefined()
    expect(m.etcdUser).toBeUndefined()
    expect(m.ssh.user).toBeUndefined()
  })

  it('names members etcd1..etcdN by position unless etcd_member_name is set (kubespray)', () => {
    expect(members('[etcd]\na\nb etcd_member_name=bee\nc').members.map((m) => m.name)).toEqual(['etcd1', 'bee', 'etcd3'])
  })

  it.each([
    ['e1 access_ip=10.0.0.1 ip=10.0.0.2 ansible_host=10.0.0.3', '10.0.0.1'],
    ['e1 ip=10.0.0.2 ansible_host=10.0.0.3', '10.0.0.2'],
    ['e1 ansible_host=10.0.0.3', '10.0.0.3'],
    ['e1.example.com', 'e1.example.com'],
  ])('takes the address from access_ip, ip, ansible_host, the name: %s', (line, address) => {
    const m = one(line)
    expect(m.address).toBe(address)
    expect(m.peerUrl).toBe(`https://${address}:2380`)
  })

  it('brackets an IPv6 address in URLs', () => {
    expect(one('e1 ip=fd00::1').peerUrl).toBe('https://[fd00::1]:2380')
  })

  it('templates the TLS variables as kubespray writes them, and refuses a relative path', () => {
    const m = one('e1 ip=10.0.0.1', 'etcd_config_dir=/etc/ssl/etcd\netcd_cert_dir="{{ etcd_config_dir }}/ssl"')
    expect(tlsFor(m)).toEqual({ cacert: '/etc/ssl/etcd/ssl/ca.pem', cert: '/etc/ssl/etcd/ssl/admin-e1.pem', key: '/etc/ssl/etcd/ssl/admin-e1-key.pem' })
    expect(() => one('e1', 'etcd_ca_file=ca.pem')).toThrow(/etcd_ca_file 'ca.pem' must be an absolute path/)
  })

  it('uses http for a plain process (etcd_service=process) with no TLS variable', () => {
    expect(one('e1 ip=10.0.0.1', 'etcd_service=process')).toMatchObject({ peerUrl: 'http://10.0.0.1:2380', clientUrl: 'http://10.0.0.1:2379' })
  })

  it.each(['etcd_cert_file=/etc/etcd/peer.crt', 'etcd_key_file=/k', 'etcd_ca_file=/ca', 'etcd_cert_dir=/etc/ssl/etcd/ssl'])(
    'uses https for a process when %s is set', (tls) => {
      expect(one('e1 ip=10.0.0.1', `etcd_service=process\n${tls}`)).toMatchObject({ peerUrl: 'https://10.0.0.1:2380', clientUrl: 'https://10.0.0.1:2379' })
    })

  it('takes explicit settings', () => {
    const m = one('e1', [
      'etcd_peer_url=https://10.1.1.1:12380', 'etcd_client_url=https://10.1.1.1:12379', 'etcd_data_dir=/data/etcd/',
      'etcd_bin_dir=/opt/etcd/bin', 'etcd_service=process', 'etcd_service_name=etcd-main', 'etcd_user=etcd',
    ].join('\n'))
    expect(m).toMatchObject({ peerUrl: 'https://10.1.1.1:12380', clientUrl: 'https://10.1.1.1:12379', dataDir: '/data/etcd', binDir: '/opt/etcd/bin', service: 'process', serviceName: 'etcd-main', etcdUser: 'etcd' })
  })

  it('resolves simple {{ var }} templates in the values it uses', () => {
    const m = one('e1 ip=10.0.0.7 ansible_port=2222', 'etcd_peer_url=https://{{ ip }}:2380\nansible_ssh_port="{{ ansible_port }}"')
    expect(m.peerUrl).toBe('https://10.0.0.7:2380')
    expect(m.ssh.port).toBe(2222)
  })

  it('keeps all merged variables', () => {
    expect(one('e1 x=1', 'y=2').vars).toMatchObject({ x: 1, y: 2 })
  })

  it('takes hosts from child groups, in Ansible order', () => {
    expect(membersOf(loadInventory(resolve('test/fixtures/inventory/kubespray/inventory.ini'))).members.map((m) => m.name)).toEqual(['etcd1', 'etcd2', 'etcd3'])
  })

  it('uses another group when asked', () => {
    expect(members('[etcd]\na\n[etcd2]\nb\n', 'etcd2').members.map((m) => m.inventoryHost)).toEqual(['b'])
  })

  it.each([[1, 0], [2, 1], [3, 0], [4, 1], [5, 0]])('%i members: %i warnings', (n, warnings) => {
    const set = members(`[etcd]\n${Array.from({ length: n }, (_, i) => `e${i}`).join('\n')}`)
    expect(set.warnings).toHaveLength(warnings)
    if (warnings) expect(set.warnings[0]).toMatch(/tolerate .* an odd count is better/)
  })

  it('warns when nested groups make the member order unstable in Ansible and names are defaulted', () => {
    const set = members('[etcd:children]\na\nb\n[a:children]\na1\n[b:children]\nb1\n[a1]\nx\n[b1]\ny\n[a]\nz\n[b]\n')
    expect(set.warnings).toEqual([expect.stringMatching(/not stable.*set etcd_member_name/)])
  })
})

describe('members that etcd-rescue refuses (exit 2, naming host and file:line)', () => {
  it.each([
    ['[etcd]\n', /group 'etcd' has no hosts/, /hosts\.ini:1$/],
    ['[other]\nh\n', /group 'etcd' is not in the inventory/, /hosts\.ini$/],
    ['[etcd]\na etcd_member_name=x\nb etcd_member_name=x', /members a and b have the same member name: x/, /hosts\.ini:3$/],
    ['[etcd]\na ip=10.0.0.1\nb ip=10.0.0.1', /members a and b have the same peer URL: https:\/\/10\.0\.0\.1:2380/, /hosts\.ini:3$/],
    ['[etcd]\na etcd_peer_url=http://a:1 etcd_client_url=http://a:2379\nb etcd_peer_url=http://b:1 etcd_client_url=http://a:2379', /same client URL/, /:3$/],
    ['[etcd]\na ansible_host=h etcd_peer_url=http://a:1 etcd_client_url=http://a:2\nb ansible_host=h etcd_peer_url=http://b:1 etcd_client_url=http://b:2', /same SSH target and data dir: h:22 \/var\/lib\/etcd/, /:3$/],
    ['[etcd]\na etcd_member_name="x;rm"', /member a: member name 'x;rm' may only hold/, /:2$/],
    ['[etcd]\na etcd_member_name="two words"', /may only hold letters/, /:2$/],
    ['[etcd]\na\n[etcd:vars]\netcd_peer_url=http://a:2380/path', /etcd_peer_url 'http:\/\/a:2380\/path' must not have a path/, /:4$/],
    ['[etcd]\na etcd_client_url=http://a', /etcd_client_url 'http:\/\/a' is not http\(s\):\/\/HOST:PORT/, /:2$/],
    ['[etcd]\na etcd_client_url=unix://a:1', /is not http\(s\)/, /:2$/],
    ['[etcd]\na etcd_client_url=http://a:70000', /invalid port 70000/, /:2$/],
    ['[etcd]\na etcd_client_url=http://a$b:1', /invalid host/, /:2$/],
    ['[etcd]\na access_ip=""', /access_ip is empty/, /:2$/],
    ['[etcd]\na ip="10.0.0.1 x"', /address '10\.0\.0\.1 x' \(from ip\) is not a host name/, /:2$/],
    ['[etcd]\nweird$h', /address 'weird\$h' \(the inventory name\)/, /:2$/],
    ['[etcd]\na ansible_host=10.0.0.1:2222', /address '10\.0\.0\.1:2222' \(from ansible_host\) is not a host name/, /:2$/],
    ['[etcd]\na etcd_peer_url=http://[10.0.0.1]:2380', /invalid host '\[10\.0\.0\.1\]'/, /:2$/],
    ['[etcd]\na etcd_service=docker', /etcd_service must be 'systemd' or 'process', got 'docker'/, /:2$/],
    ['[etcd]\na etcd_data_dir=var/lib/etcd', /etcd_data_dir 'var\/lib\/etcd' must be an absolute path/, /:2$/],
    ['[etcd]\na etcd_data_dir=/', /etcd_data_dir must not be \//, /:2$/],
    ['[etcd]\na etcd_bin_dir=bin', /etcd_bin_dir 'bin' must be an absolute path/, /:2$/],
    ['[etcd]\na etcd_service_name="etcd;x"', /not a systemd unit name/, /:2$/],
    ['[etcd]\na etcd_service_name=etcd.socket', /etcd_service_name 'etcd\.socket' names a \.socket unit; etcd runs as a service/, /:2$/],
    ['[etcd]\na etcd_user="a b"', /etcd_user 'a b' is not a user name/, /:2$/],
    ['[etcd]\na ansible_port=ssh', /ansible_port must be a port number/, /:2$/],
    ['[etcd]\na ansible_become=maybe', /ansible_become must be a boolean/, /:2$/],
    ['[etcd]\na ansible_user="root;x"', /SSH user 'root;x' is not a user name/, /:2$/],
    ['[etcd]\na etcd_member_name=[1]', /etcd_member_name must be a string/, /:2$/],
    ['[etcd]\na ip="{{ lookup(\'env\', \'IP\') }}"', /'ip' uses a Jinja expression etcd-rescue does not evaluate/, /:2$/],
    ['[etcd]\na ip="{{ nope }}"', /refers to \{\{ nope \}\}, which is not defined/, /:2$/],
  ])('%j', (text, message, where) => {
    const err = inputError(() => members(text))
    expect(err.exitCode).toBe(2)
    expect(err.message).toMatch(message)
    expect(err.where).toMatch(where)
  })

  it('points at the group_vars file and line that set a bad value', () => {
    const err = inputError(() => membersOf(load({ 'hosts.ini': '[etcd]\na\n', 'group_vars/etcd.yml': '# data\n\netcd_data_dir: data/etcd\n' })))
    expect(err.where).toMatch(/group_vars\/etcd\.yml:3$/)
  })

  it('says when *.ini files were skipped in an inventory directory', () => {
    const err = inputError(() => membersOf(loadInventory(resolve('test/fixtures/inventory/directory')), 'nope'))
    expect(err.hint).toMatch(/Groups in this inventory: etcd, workers/)
    expect(err.hint).toMatch(/ignores \*\.ini files inside an inventory directory.*ignored\.ini/)
  })
})

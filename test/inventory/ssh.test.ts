import { homedir } from 'node:os'
import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadInventory, membersOf } from '../../lib/inventory/members.ts'
import { SshConfigError, sshOptions, sshTargetOf, type SshTarget } from '../../lib/inventory/ssh.ts'

const target = (vars: Record<string, unknown>, warnings: string[] = []): SshTarget => sshTargetOf('inv-name', (n) => vars[n], warnings)
const home = homedir()

describe('SSH target from connection variables', () => {
  it.each<[Record<string, unknown>, Partial<SshTarget>]>([
    [{}, { host: 'inv-name', port: 22, become: false }],
    [{ ansible_host: '10.0.0.1', ansible_port: 2222, ansible_user: 'admin' }, { host: '10.0.0.1', port: 2222, user: 'admin' }],
    [{ ansible_port: '2222' }, { port: 2222 }],
    // Legacy names win when both are set: the ssh plugin lists them last.
    [{ ansible_host: 'a', ansible_ssh_host: 'b' }, { host: 'b' }],
    [{ ansible_port: 1, ansible_ssh_port: 2 }, { port: 2 }],
    [{ ansible_user: 'a', ansible_ssh_user: 'b' }, { user: 'b' }],
    [{ ansible_private_key_file: '/a', ansible_ssh_private_key_file: '/b' }, { privateKeyFile: '/b' }],
    [{ ansible_ssh_private_key_file: '~/.ssh/id' }, { privateKeyFile: `${home}/.ssh/id` }],
    [{ ansible_ssh_private_key_file: 'keys/id' }, { privateKeyFile: resolve('keys/id') }],
    [{ ansible_become: true }, { become: true, becomeUser: 'root' }],
    [{ ansible_become: 'yes', ansible_become_user: 'etcd' }, { become: true, becomeUser: 'etcd' }],
  ])('%j', (vars, expected) => {
    expect(target(vars)).toMatchObject(expected)
  })

  it('has no become user without become, and no jump host with ProxyJump=none', () => {
    expect(target({ ansible_become: 'no', ansible_become_user: 'etcd' }).becomeUser).toBeUndefined()
    expect(target({ ansible_ssh_common_args: '-o ProxyJump=none' }).jump).toBeUndefined()
    expect(target({ ansible_ssh_common_args: '-o StrictHostKeyChecking=ask' }).strictHostKeyChecking).toBeUndefined()
  })

  it.each<[string, Partial<SshTarget>]>([
    ['-o ProxyJump=ops@bastion:2222', { jump: { host: 'bastion', port: 2222, user: 'ops', become: false } }],
    ['-J bastion', { jump: { host: 'bastion', port: 22, become: false } }],
    ['-Jssh://u@[fd00::1]:2200', { jump: { host: 'fd00::1', port: 2200, user: 'u', become: false } }],
    ['-o UserKnownHostsFile=~/.ssh/kh -o StrictHostKeyChecking=accept-new', { knownHostsFiles: [`${home}/.ssh/kh`], strictHostKeyChecking: 'accept-new' }],
    ['-o "UserKnownHostsFile /etc/kh /etc/kh2"', { knownHostsFiles: ['/etc/kh', '/etc/kh2'] }],
    ['-oStrictHostKeyChecking=off', { strictHostKeyChecking: 'no' }],
    ['-i /k1 -o IdentityFile=/k2', { identityFiles: ['/k1', '/k2'] }], // every IdentityFile counts, as in OpenSSH
    ['-o Port=2022 -p 2023', { port: 2022 }],
    ['-l u -o User=v', { user: 'u' }],
    ['-vvv -C -o Port=2022', { port: 2022 }],
    ['-o ProxyCommand="ssh -W %h:%p -q -p 2200 -i /k admin@bastion"', { jump: { host: 'bastion', port: 2200, user: 'admin', privateKeyFile: '/k', become: false } }],
    ['-o ProxyCommand="ssh -W [%h]:%p -l admin bastion"', { jump: { host: 'bastion', port: 22, user: 'admin', become: false } }],
    ['-o ProxyJump=a -o ProxyCommand="ssh -W %h:%p b"', { jump: { host: 'a', port: 22, become: false } }],
  ])('ansible_ssh_common_args %s', (args, expected) => {
    expect(target({ ansible_ssh_common_args: args })).toMatchObject(expected)
  })

  it('lets connection variables beat the same options in ssh args (they come first on the command line)', () => {
    expect(target({ ansible_port: 22, ansible_user: 'a', ansible_ssh_private_key_file: '/a', ansible_ssh_common_args: '-p 2 -l b -i /b' }))
      .toMatchObject({ port: 22, user: 'a', privateKeyFile: '/a' })
  })

  it('reads ansible_ssh_args, then common, then extra args; the first value wins', () => {
    expect(target({ ansible_ssh_args: '-o Port=1', ansible_ssh_common_args: '-o Port=2', ansible_ssh_extra_args: '-o Port=3 -o User=x' }))
      .toMatchObject({ port: 1, user: 'x' })
  })

  it('turns host_key_checking=false into StrictHostKeyChecking=no, ahead of any -o', () => {
    expect(target({ ansible_host_key_checking: false, ansible_ssh_common_args: '-o StrictHostKeyChecking=yes' })).toMatchObject({ strictHostKeyChecking: 'no' })
    expect(target({ ansible_ssh_host_key_checking: 'True', ansible_ssh_common_args: '-o StrictHostKeyChecking=yes' })).toMatchObject({ strictHostKeyChecking: 'yes' })
  })

  it.each<[Record<string, unknown>, RegExp]>([
    [{ ansible_ssh_common_args: '-o ProxyCommand="nc -X 5 -x proxy %h %p"' }, /ProxyCommand .* is ignored/],
    [{ ansible_become: true, ansible_become_method: 'su' }, /ansible_become_method is 'su'; etcd-rescue uses sudo/],
    [{ ansible_become: true, ansible_become_password: 'x' }, /NOPASSWD/],
    [{ ansible_ssh_pass: 'x' }, /authenticates with keys/],
    [{ ansible_connection: 'local' }, /ansible_connection is 'local'/],
  ])('warns: %j', (vars, warning) => {
    const warnings: string[] = []
    target(vars, warnings)
    expect(warnings).toEqual([expect.stringMatching(warning)])
  })

  it.each<[Record<string, unknown>, string]>([
    [{ ansible_port: 'x' }, 'ansible_port'],
    [{ ansible_ssh_port: 0 }, 'ansible_ssh_port'],
    [{ ansible_become: 'maybe' }, 'ansible_become'],
    [{ ansible_ssh_common_args: '-o "unclosed' }, 'ansible_ssh_common_args'],
    [{ ansible_ssh_common_args: ['-J', 'x'] }, 'ansible_ssh_common_args'],
    [{ ansible_ssh_extra_args: '-p 99999' }, 'ansible_ssh_extra_args'],
  ])('refuses %j, naming %s', (vars, variable) => {
    let err: unknown
    try { target(vars) } catch (e) { err = e }
    expect(err).toBeInstanceOf(SshConfigError)
    expect((err as SshConfigError).variable).toBe(variable)
  })

  it('parses ssh options like getopt', () => {
    expect(sshOptions(['-qCp', '22', '-oUser=x', 'host', '-J', 'j', '-v'])).toEqual([['p', '22'], ['o', 'User=x'], ['J', 'j']])
  })

  it('reads the ssh-args fixture', () => {
    const set = membersOf(loadInventory(resolve('test/fixtures/inventory/ssh-args.ini')))
    expect(set.members.map((m) => m.ssh)).toMatchObject([
      { host: '10.1.0.1', port: 22, knownHostsFiles: ['/etc/etcd-rescue/known_hosts'], strictHostKeyChecking: 'yes', jump: { host: 'bastion.example.com', port: 2222, user: 'ops' } },
      // A chain: jump2 is reached through jump1.
      { host: '10.1.0.2', identityFiles: [`${home}/.ssh/id_etcd`], strictHostKeyChecking: 'accept-new', jump: { host: 'jump2', jump: { host: 'jump1' } } },
      { host: '10.1.0.3', port: 2022, user: 'extra', jump: { host: 'bastion2', port: 2200, user: 'admin' } },
      { host: '10.1.0.4', port: 22, knownHostsFiles: ['/tmp/kh', resolve('other')], strictHostKeyChecking: 'no' },
    ])
  })

  it('reads legacy variables (legacy-vars fixture)', () => {
    const set = membersOf(loadInventory(resolve('test/fixtures/inventory/legacy-vars.ini')))
    expect(set.members.map((m) => m.ssh)).toMatchObject([
      { host: '192.0.2.1', port: 2201, user: 'legacy' },
      { host: '192.0.2.20', port: 2202 },
      { host: '192.0.2.3', user: 'old', privateKeyFile: `${home}/.ssh/etcd` },
    ])
    // The address others use is not ansible_ssh_host: access_ip, ip, ansible_host, name.
    expect(set.members.map((m) => m.address)).toEqual(['e1', '192.0.2.2', '192.0.2.3'])
  })
})

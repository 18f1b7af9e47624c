// Who wins when the inventory, -e, -u, --private-key, ansible.cfg and the ssh config
// all say something about one host: Ansible's order (its ssh command line, then
// OpenSSH's first-value-wins), with where each setting came from.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { AnsibleConfig } from '../../lib/ansible/config.ts'
import { parseExtraVars } from '../../lib/inventory/extra-vars.ts'
import { hostConnection, loadInventory, membersOf, type MemberContext } from '../../lib/inventory/members.ts'
import { sshConfigSource } from '../../lib/ssh/config.ts'

const dir = mkdtempSync(join(tmpdir(), 'connection-'))
const home = join(dir, 'home')
const sshConfig = join(dir, 'ssh_config')
writeFileSync(sshConfig, `Host etcd-*
  HostName %h.lab.example
  User config-user
  Port 2200
  IdentityFile ~/.ssh/config-key
  StrictHostKeyChecking yes
  ConnectTimeout 4
  UserKnownHostsFile ~/.ssh/kh
Host bastion
  User jumper
Host etcd-b
  ProxyJump bastion:2022
`)
const cfgFile = join(dir, 'ansible.cfg')
const cfg = (over: Partial<AnsibleConfig> = {}): AnsibleConfig => ({ file: cfgFile, ...over })
const at = (line: number) => `${cfgFile}:${line}`

function inventory(hostLine: string): string {
  const path = join(dir, `inv-${Math.random().toString(36).slice(2)}.ini`)
  writeFileSync(path, `[etcd]\n${hostLine}\n`)
  return path
}
const ctx = (over: MemberContext = {}): MemberContext => ({ ssh: { source: sshConfigSource({ file: sshConfig, home }), home }, ...over })
const member = (hostLine: string, over: MemberContext = {}) => membersOf(loadInventory(inventory(hostLine)), 'etcd', ctx(over)).members[0]

describe('connection precedence', () => {
  it('reads everything from the ssh config for a bare alias, and uses its HostName as the address', () => {
    const m = member('etcd-a')
    expect(m.ssh).toMatchObject({
      host: 'etcd-a.lab.example', port: 2200, user: 'config-user', identityFiles: [`${home}/.ssh/config-key`],
      strictHostKeyChecking: 'yes', connectTimeoutMs: 4000, knownHostsFiles: [`${home}/.ssh/kh`],
    })
    expect(m.address).toBe('etcd-a.lab.example')
    expect(m.peerUrl).toBe('https://etcd-a.lab.example:2380') // systemd member: kubespray's https default
    expect(m.service).toBe('systemd')
    expect(m.sshOrigins).toMatchObject({ hostname: `${sshConfig}:2`, user: `${sshConfig}:3`, port: `${sshConfig}:4`, identityfile: `${sshConfig}:5` })
  })

  it('matches the config against ansible_host, whose HostName still applies', () => {
    expect(member('x ansible_host=etcd-a').ssh.host).toBe('etcd-a.lab.example')
    expect(member('x ansible_host=10.0.0.9').ssh).toMatchObject({ host: '10.0.0.9', port: 22 })
  })

  it('user: inventory variable, then -u, then ansible.cfg, then the ssh config', () => {
    const ansible = cfg({ remoteUser: { value: 'cfg-user', from: at(3) } })
    expect(member('etcd-a ansible_user=inv-user', { remoteUser: 'flag-user', ansible }).ssh.user).toBe('inv-user')
    expect(member('etcd-a', { remoteUser: 'flag-user', ansible }).sshOrigins.user).toBe('-u')
    expect(member('etcd-a', { ansible }).ssh.user).toBe('cfg-user')
    expect(member('etcd-a', { ansible }).sshOrigins.user).toBe(`ansible.cfg ${at(3)}`)
    expect(member('etcd-a').ssh.user).toBe('config-user')
  })

  it('-e beats every inventory variable, from key=value or @file', () => {
    const vars = join(dir, 'extra.yml')
    writeFileSync(vars, 'ansible_port: 2999\netcd_data_dir: /data/etcd\n')
    const m = member('etcd-a ansible_user=inv-user ansible_port=22', { extraVars: parseExtraVars(['ansible_user=cli-user', `@${vars}`]) })
    expect(m.ssh).toMatchObject({ user: 'cli-user', port: 2999 })
    expect(m.dataDir).toBe('/data/etcd')
    expect(m.sshOrigins.user).toBe('-e ansible_user')
  })

  it('key: Ansible\'s one first (variable, then --private-key, then ansible.cfg), the config\'s after it', () => {
    const ansible = cfg({ privateKeyFile: { value: '/cfg/key', from: at(4) } })
    expect(member('etcd-a ansible_ssh_private_key_file=/inv/key', { privateKey: '/flag/key', ansible }).ssh)
      .toMatchObject({ privateKeyFile: '/inv/key', identityFiles: [`${home}/.ssh/config-key`] })
    expect(member('etcd-a', { privateKey: '/flag/key', ansible }).ssh.privateKeyFile).toBe('/flag/key')
    expect(member('etcd-a', { ansible }).ssh.privateKeyFile).toBe('/cfg/key')
  })

  it('ssh args: common args beat the config; ansible.cfg ssh_args come first of all, as on Ansible\'s command line', () => {
    expect(member(`etcd-a ansible_ssh_common_args='-o User=args-user -o Port=2300'`).ssh).toMatchObject({ user: 'args-user', port: 2300 })
    expect(member(`etcd-a ansible_user=inv ansible_ssh_common_args='-o User=args-user'`).ssh.user).toBe('inv')
    const ansible = cfg({ sshArgs: { value: '-C -o ControlMaster=auto -o Port=2400', from: at(9) } })
    const m = member('etcd-a ansible_port=2500', { ansible })
    expect(m.ssh.port).toBe(2400)
    expect(m.sshOrigins.port).toBe(`ansible.cfg ${at(9)}`)
  })

  it('host_key_checking=false (variable, else ansible.cfg) turns checking off over the config', () => {
    const ansible = cfg({ hostKeyChecking: { value: false, from: at(5) } })
    expect(member('etcd-a', { ansible }).ssh.strictHostKeyChecking).toBe('no')
    expect(member('etcd-a ansible_host_key_checking=true', { ansible }).ssh.strictHostKeyChecking).toBe('yes')
  })

  it('timeout: variable, then ansible.cfg, then the config\'s ConnectTimeout', () => {
    const ansible = cfg({ timeout: { value: 30, from: at(6) } })
    expect(member('etcd-a ansible_timeout=20', { ansible }).ssh.connectTimeoutMs).toBe(20_000)
    expect(member('etcd-a', { ansible }).ssh.connectTimeoutMs).toBe(30_000)
    expect(member('etcd-a').ssh.connectTimeoutMs).toBe(4000)
  })

  it('become: variable, then ansible.cfg', () => {
    const ansible = cfg({ become: { value: true, from: at(7) }, becomeUser: { value: 'etcd', from: at(8) } })
    expect(member('etcd-a', { ansible }).ssh).toMatchObject({ become: true, becomeUser: 'etcd' })
    expect(member('etcd-a ansible_become=false', { ansible }).ssh.become).toBe(false)
    expect(member('etcd-a ansible_become_user=root', { ansible }).ssh.becomeUser).toBe('root')
  })

  it('resolves the jump host through the config too', () => {
    const m = member('etcd-b')
    expect(m.ssh.jump).toMatchObject({ host: 'bastion', port: 2022, user: 'jumper' })
    expect(m.sshOrigins.proxyjump).toBe(`${sshConfig}:12`)
  })

  it('answers for any inventory host, not only members', () => {
    const inv = loadInventory(inventory('etcd-a\n[web]\nweb1 ansible_user=w'))
    expect(hostConnection(inv, 'web1', ctx()).target).toMatchObject({ host: 'web1', user: 'w' })
    expect(() => hostConnection(inv, 'nope', ctx())).toThrow(/not in the inventory/)
  })
})

// ansible.cfg as etcd-rescue finds and reads it, against `ansible-config dump` (the
// same machinery Ansible runs with), in directories and HOMEs of the test's own.
import { execFileSync, spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { findAnsibleConfig, loadAnsibleConfig, type AnsibleConfig } from '../../lib/ansible/config.ts'
import { InputError } from '../../lib/errors.ts'

interface Where { cwd: string; home: string; env: NodeJS.ProcessEnv }

function place(): Where {
  const root = mkdtempSync(join(tmpdir(), 'ansible-cfg-'))
  const cwd = join(root, 'project')
  const home = join(root, 'home')
  mkdirSync(cwd)
  mkdirSync(home)
  return { cwd, home, env: { PATH: process.env.PATH, HOME: home } }
}

type Dump = Array<{ name: string; value: unknown }>
function ansibleConfig({ cwd, env }: Where, type = 'base'): Dump {
  const out = execFileSync('ansible-config', ['dump', '--only-changed', '--format', 'json', '-t', type], { cwd, env, encoding: 'utf8' })
  return JSON.parse(out)
}
const valueOf = (dump: Dump, name: string): unknown => dump.find((d) => d.name === name)?.value

describe('which ansible.cfg', () => {
  it.each([
    ['ANSIBLE_CONFIG (a file) first', { env: 'custom.cfg', cwd: true, home: true }, 'env'],
    ['ANSIBLE_CONFIG naming a directory: its ansible.cfg', { envDir: true, cwd: true, home: true }, 'envdir'],
    ['./ansible.cfg before ~/.ansible.cfg', { cwd: true, home: true }, 'cwd'],
    ['~/.ansible.cfg when there is no other', { home: true }, 'home'],
    ['not ./ansible.cfg in a world-writable directory', { cwd: true, home: true, worldWritable: true }, 'home'],
    ['none', {}, undefined],
  ] as const)('%s', (_title, setup, expected) => {
    const w = place()
    const files: Record<string, string> = {
      env: join(w.cwd, 'custom.cfg'),
      envdir: join(w.cwd, 'conf', 'ansible.cfg'),
      cwd: join(w.cwd, 'ansible.cfg'),
      home: join(w.home, '.ansible.cfg'),
    }
    mkdirSync(join(w.cwd, 'conf'))
    const write = (key: string) => writeFileSync(files[key], `[defaults]\nremote_user = from-${key}\n`)
    if ('env' in setup) { write('env'); w.env.ANSIBLE_CONFIG = setup.env }
    if ('envDir' in setup) { write('envdir'); w.env.ANSIBLE_CONFIG = 'conf' }
    if ('cwd' in setup) write('cwd')
    if ('home' in setup) write('home')
    if ('worldWritable' in setup) chmodSync(w.cwd, 0o777)
    const ours = findAnsibleConfig({ env: w.env, cwd: w.cwd, home: w.home })
    expect(ours).toBe(expected && files[expected])
    // Ansible agrees (when /etc/ansible/ansible.cfg exists on this machine, "none" reads that).
    const theirs = valueOf(ansibleConfig(w), 'CONFIG_FILE')
    expect(theirs ?? undefined).toBe(ours)
  })
})

describe('what ansible.cfg says', () => {
  const CFG = `# comment
; another
[defaults]
inventory = inv/hosts.ini ; an inline comment
remote_user: deploy
private_key_file = keys/id_etcd
host_key_checking = False
timeout = 17
forks = 7
other = ignored

[privilege_escalation]
become = yes
become_user = "etcd"

[ssh_connection]
ssh_args = -o ControlMaster=auto
  -o Port=2200
`
  it('reads the same values as ansible-config, relative paths from the file\'s directory', () => {
    const w = place()
    writeFileSync(join(w.cwd, 'ansible.cfg'), CFG)
    const c = loadAnsibleConfig(w)
    const dump = ansibleConfig(w)
    expect(c.inventory?.value).toEqual(valueOf(dump, 'DEFAULT_HOST_LIST'))
    expect(c.remoteUser?.value).toBe(valueOf(dump, 'DEFAULT_REMOTE_USER'))
    expect(c.privateKeyFile?.value).toBe(valueOf(dump, 'DEFAULT_PRIVATE_KEY_FILE'))
    expect(c.hostKeyChecking?.value).toBe(valueOf(dump, 'HOST_KEY_CHECKING'))
    expect(c.timeout?.value).toBe(valueOf(dump, 'DEFAULT_TIMEOUT'))
    expect(c.forks?.value).toBe(valueOf(dump, 'DEFAULT_FORKS'))
    expect(c.become?.value).toBe(valueOf(dump, 'DEFAULT_BECOME'))
    expect(c.becomeUser?.value).toBe(valueOf(dump, 'DEFAULT_BECOME_USER'))
    const ssh = (ansibleConfig(w, 'connection') as unknown as Array<Record<string, Dump>>).find((p) => p.ssh)!.ssh
    expect(c.sshArgs?.value).toBe(valueOf(ssh, 'ssh_args'))
    // And where each came from, by line.
    const file = join(w.cwd, 'ansible.cfg')
    expect(c).toMatchObject<Partial<AnsibleConfig>>({
      file,
      remoteUser: { value: 'deploy', from: `${file}:5` },
      becomeUser: { value: 'etcd', from: `${file}:14` },
      sshArgs: { value: '-o ControlMaster=auto\n-o Port=2200', from: `${file}:17` },
    })
  })

  it('lets ANSIBLE_* variables beat the file, as Ansible does', () => {
    const w = place()
    writeFileSync(join(w.cwd, 'ansible.cfg'), CFG)
    Object.assign(w.env, { ANSIBLE_REMOTE_USER: 'env-user', ANSIBLE_HOST_KEY_CHECKING: 'true', ANSIBLE_FORKS: '3' })
    const c = loadAnsibleConfig(w)
    const dump = ansibleConfig(w)
    expect([c.remoteUser?.value, c.hostKeyChecking?.value, c.forks?.value])
      .toEqual([valueOf(dump, 'DEFAULT_REMOTE_USER'), valueOf(dump, 'HOST_KEY_CHECKING') ?? true, valueOf(dump, 'DEFAULT_FORKS')])
    expect(c.remoteUser).toEqual({ value: 'env-user', from: 'env ANSIBLE_REMOTE_USER' })
  })

  it('tells an indented key from a continued value as configparser does', () => {
    const w = place()
    writeFileSync(join(w.cwd, 'ansible.cfg'), '[defaults]\n  remote_user = a\n  forks = 4\n[ssh_connection]\nssh_args = -C\n    -o Port=2\n')
    const c = loadAnsibleConfig(w)
    const dump = ansibleConfig(w)
    expect([c.remoteUser?.value, c.forks?.value]).toEqual([valueOf(dump, 'DEFAULT_REMOTE_USER'), valueOf(dump, 'DEFAULT_FORKS')])
    expect(c.sshArgs?.value).toBe('-C\n-o Port=2')
  })

  it.each([
    ['remote_user = x\n', 1, /before the first \[section\]/],
    ['[defaults]\nforks = 3\nforks = 4\n', 3, /'forks' appears twice/],
    ['[defaults]\njust words\n', 2, /expected key = value/],
    ['[defaults]\nforks = many\n', 2, /forks must be a whole number/],
  ])('refuses %j naming the line, where Ansible fails too', (text, line, message) => {
    const w = place()
    const file = join(w.cwd, 'ansible.cfg')
    writeFileSync(file, text)
    const err = (() => { try { loadAnsibleConfig(w) } catch (e) { return e } })()
    expect(err).toBeInstanceOf(InputError)
    expect(err).toMatchObject({ where: `${file}:${line}`, message: expect.stringMatching(message), exitCode: 2 })
    const ansible = spawnSync('ansible-config', ['dump', '--only-changed', '--format', 'json'], { cwd: w.cwd, env: w.env, encoding: 'utf8' })
    expect(ansible.status, ansible.stdout).not.toBe(0)
  })
})

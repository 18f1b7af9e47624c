// The ssh config as etcd-rescue reads it, against OpenSSH itself: for each config and
// host name, what we resolve must equal what `ssh -G -F CONFIG HOST` prints (-G
// connects nowhere). ssh takes ~ and %d from passwd, so these cases pass passwd's home.
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { obtainOptions, readConfigFile, sshConfigSource, type CommandLineOption } from '../../lib/ssh/config.ts'
import { resolveSshTarget } from '../../lib/ssh/resolve.ts'
import { InputError } from '../../lib/errors.ts'

const home = userInfo().homedir
const dir = mkdtempSync(join(tmpdir(), 'ssh-config-'))
let n = 0
const file = (text: string, name = `config${++n}`): string => {
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
}

const FIELDS = ['hostname', 'user', 'port', 'identityfile', 'identitiesonly', 'proxyjump', 'userknownhostsfile',
  'stricthostkeychecking', 'connecttimeout', 'serveraliveinterval'] as const

/** The fields we resolve, as `ssh -G` prints them. */
function ours(config: string, host: string, cli: CommandLineOption[] = []): Record<string, string> {
  const ctx = { source: sshConfigSource({ file: config, home }), home }
  const got = obtainOptions(host, ctx.source, cli)
  const { target: t } = resolveSshTarget(host, cli, ctx)
  // ssh -G prints IdentityFile and ProxyJump as written; the rest expanded.
  const ids = got.get('identityfile')?.map((o) => o.value[0])
    ?? ['~/.ssh/id_rsa', '~/.ssh/id_ecdsa', '~/.ssh/id_ecdsa_sk', '~/.ssh/id_ed25519', '~/.ssh/id_ed25519_sk', '~/.ssh/id_xmss', '~/.ssh/id_dsa']
  const jump = got.get('proxyjump')?.[0].value[0]
  const out: Record<string, string> = {
    hostname: t.host,
    user: t.user ?? userInfo().username,
    port: String(t.port),
    identityfile: ids.join('\n'),
    identitiesonly: t.identitiesOnly ? 'yes' : 'no',
    userknownhostsfile: (t.knownHostsFiles ?? [`${home}/.ssh/known_hosts`, `${home}/.ssh/known_hosts2`]).join(' '),
    stricthostkeychecking: { yes: 'true', no: 'false', 'accept-new': 'accept-new', none: 'ask' }[t.strictHostKeyChecking ?? 'none']!,
    connecttimeout: t.connectTimeoutMs === undefined ? 'none' : String(t.connectTimeoutMs / 1000),
    serveraliveinterval: String((t.serverAliveIntervalMs ?? 0) / 1000),
  }
  if (jump && jump.toLowerCase() !== 'none') out.proxyjump = jump
  return out
}

/** The same fields from `ssh -G`. */
function openssh(config: string, host: string, cli: CommandLineOption[] = []): Record<string, string> {
  const text = execFileSync('ssh', ['-G', '-F', config, ...cli.flatMap((o) => ['-o', `${o.keyword}=${o.value}`]), host], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  const out: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const [key, ...rest] = line.split(' ')
    if (!(FIELDS as readonly string[]).includes(key)) continue
    out[key] = out[key] !== undefined && key === 'identityfile' ? `${out[key]}\n${rest.join(' ')}` : rest.join(' ')
  }
  if (out.proxyjump === 'none') delete out.proxyjump
  return out
}

file(`
Host inc-*
  User from-include
  Port 2201
Host *
  ServerAliveInterval 42
`, 'included.conf')
file('Host never\n  User never\n', 'other.conf')

const CASES: Array<[string, string, string[]]> = [
  ['patterns, negation and first-wins', `
# Options before any Host line apply to every host.
ConnectTimeout 7
Host web-? !web-9
  HostName %h.example.com
  User alice
Host web*
  User bob
  Port 2200
Host *.internal db?
  User carol
  IdentityFile ~/.ssh/id_db
  IdentityFile ~/.ssh/id_%h_%r
Host *
  User fallback
  Port 2222
  IdentityFile /etc/keys/common
`, ['web-1', 'web-9', 'web-12', 'web-', 'db', 'db1', 'db12', 'x.internal', 'other', 'WEB-1', 'Web-1']],
  ['Include with globs, in and out of a matching block', `
Host inc-a
  Include ${dir}/inc*.conf
Host inc-b
  StrictHostKeyChecking accept-new
Include ${dir}/other.conf ${dir}/nothing-*.conf
Host *
  User last
`, ['inc-a', 'inc-b', 'inc-c', 'never', 'plain']],
  ['ProxyJump, known_hosts with every token, checking, timeouts', `
Host bastion
  ProxyJump none
  User ops
Host chain-*
  ProxyJump ops@jump1:2222,jump2
Host tok
  UserKnownHostsFile ~/kh/%h-%p-%r-%u-%n-%% %d/kh2-%i-%k-%C-%l-%L
  User tokuser
  HostKeyAlias aliased
Host strict-off
  StrictHostKeyChecking off
Host strict-yes
  StrictHostKeyChecking yes
Host strict-no
  StrictHostKeyChecking no
Host * !edge
  IdentitiesOnly yes
  ConnectTimeout 3
  ServerAliveInterval 15
  ProxyJump edge
`, ['bastion', 'edge', 'chain-1', 'tok', 'strict-off', 'strict-yes', 'strict-no', 'plain']],
  ['spellings: case, =, quotes, comments, IgnoreUnknown', `
IgnoreUnknown UseKeychain,AddKeys*
Host "quoted host" spaced
  HOSTNAME=real.example.com
  user = dave # a comment
  IdentityFile "/keys/with space"
  UseKeychain yes
Host spaced
  Port=2022
`, ['spaced', 'other']],
]

describe('ssh config, OpenSSH as the oracle (ssh -G)', () => {
  for (const [title, text, hosts] of CASES) {
    it.each(hosts)(`${title}: %s`, (host) => {
      const config = file(text)
      expect(ours(config, host)).toEqual(openssh(config, host))
    })
  }

  it('puts command-line options first, as ssh -o does', () => {
    const config = file(CASES[0][1])
    const cli = [
      { keyword: 'User', value: 'cli-user', from: 'test' },
      { keyword: 'IdentityFile', value: '/cli/key', from: 'test' },
      { keyword: 'StrictHostKeyChecking', value: 'no', from: 'test' },
    ]
    for (const host of ['web-1', 'db1', 'other']) expect(ours(config, host, cli)).toEqual(openssh(config, host, cli))
  })

  it('expands ~ and %-tokens in IdentityFile as ssh would when it loads the key', () => {
    const config = file('Host t\n  User u1\n  Port 2022\n  HostName T.example\n  IdentityFile ~/k/%h_%r_%n_%p_%u_%%\n  IdentityFile %d/k2\n')
    const { target } = resolveSshTarget('t', [], { source: sshConfigSource({ file: config, home: '/home/x' }), home: '/home/x', localUser: 'me' })
    expect(target.identityFiles).toEqual(['/home/x/k/t.example_u1_t_2022_me_%', '/home/x/k2'])
  })

  it('reads Include paths relative to ~/.ssh, and ~/.ssh/config then the system file', () => {
    const fakeHome = mkdtempSync(join(tmpdir(), 'ssh-home-'))
    mkdirSync(join(fakeHome, '.ssh', 'conf.d'), { recursive: true })
    writeFileSync(join(fakeHome, '.ssh', 'config'), 'Include conf.d/*\nHost *\n  Port 2000\n')
    writeFileSync(join(fakeHome, '.ssh', 'conf.d', 'a'), 'Host h\n  User from-conf-d\n')
    const system = file('Host *\n  User from-system\n  ServerAliveInterval 30\n')
    const source = sshConfigSource({ home: fakeHome, systemFile: system })
    const r = (host: string) => resolveSshTarget(host, [], { source, home: fakeHome }).target
    expect(r('h')).toMatchObject({ user: 'from-conf-d', port: 2000, serverAliveIntervalMs: 30_000 })
    expect(r('g')).toMatchObject({ user: 'from-system', port: 2000 })
    expect(resolveSshTarget('h', [], { source, home: fakeHome }).origins).toMatchObject({
      user: `${join(fakeHome, '.ssh', 'conf.d', 'a')}:2`, port: `${join(fakeHome, '.ssh', 'config')}:3`,
    })
  })

  it('resolves each ProxyJump hop through the config, nearest hop last in the chain', () => {
    const config = file(CASES[2][1])
    const { target } = resolveSshTarget('chain-1', [], { source: sshConfigSource({ file: config, home }), home })
    // chain-1 is reached through jump2, jump2 through ops@jump1:2222; jump1's own ProxyJump (edge) takes it further.
    expect(target.jump).toMatchObject({ host: 'jump2', port: 22, jump: { host: 'jump1', port: 2222, user: 'ops', jump: { host: 'edge' } } })
    expect(target.jump!.jump!.jump!.jump).toBeUndefined()
    const bastion = resolveSshTarget('bastion', [], { source: sshConfigSource({ file: config, home }), home }).target
    expect(bastion.jump).toBeUndefined()
  })
})

describe('bad ssh configs: named by file and line, as ssh refuses them too', () => {
  it.each([
    ['Host x\n  Bogus yes\n', 2, /bad configuration option: bogus/],
    ['Host x\n  Port\n', 2, /no argument after keyword "Port"/],
    ['Host x\n\n  HostName "a b\n', 3, /does not parse/],
    ['Host\n', 1, /does not parse/],
    ['Host x\n  User a b\n', 2, /garbage at end of line/],
  ])('%j', (text, line, message) => {
    const config = file(text)
    const err = (() => { try { obtainOptions('x', sshConfigSource({ file: config, home })) } catch (e) { return e } })()
    expect(err).toBeInstanceOf(InputError)
    expect((err as InputError).where).toBe(`${config}:${line}`)
    expect((err as Error).message).toMatch(message)
    expect((err as InputError).exitCode).toBe(2)
    // OpenSSH stops on the same line.
    const ssh = spawnSync('ssh', ['-G', '-F', config, 'x'], { encoding: 'utf8' })
    expect(ssh.status).toBe(255)
    expect(ssh.stderr).toMatch(new RegExp(`line ${line}`))
  })

  it('refuses Match with file and line, even in a block that does not apply', () => {
    const config = file('Host other\n  User x\nMatch host x\n  User y\n')
    expect(() => obtainOptions('x', sshConfigSource({ file: config, home }))).toThrow(expect.objectContaining({ where: `${config}:3`, message: expect.stringMatching(/Match/) }))
  })

  it('refuses a bad value where it is written', () => {
    const config = file('Host x\n  Port 99999\n')
    expect(() => resolveSshTarget('x', [], { source: sshConfigSource({ file: config, home }), home })).toThrow(expect.objectContaining({ where: `${config}:2` }))
    expect(() => readConfigFile(join(dir, 'missing'))).toThrow(/cannot read ssh config/)
  })
})

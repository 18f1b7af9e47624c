// SshHost against the lab's real OpenSSH servers: a jump host, sudo for a
// non-root user, and the errors an operator must be able to act on.
import { trusted } from '../../lib/shell/sh.ts'
import { describe, expect, it } from 'vitest'
import { writeFileSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SshHost, type SshTarget } from '../../lib/ssh/connection.ts'
import { loadInventory, membersOf } from '../../lib/inventory/members.ts'
import { RemoteCommandError } from '../../lib/ssh/errors.ts'
import { sshConfigSource } from '../../lib/ssh/config.ts'
import { onHost, useLab } from '../support/lab.ts'

describe('ssh on the lab', () => {
  const ctx = useLab({ hosts: 2 })
  const target = (i: number, over: Partial<SshTarget> = {}): SshTarget => ({
    host: ctx.lab.state.hosts[i].address, port: 22, user: 'root', privateKeyFile: ctx.lab.paths.privateKey,
    knownHostsFiles: [ctx.lab.paths.knownHosts], become: false, ...over,
  })

  it('reaches a host through a jump host named in the inventory', async () => {
    const [h1, h2] = ctx.lab.state.hosts
    const dir = mkdtempSync(join(tmpdir(), 'jump-'))
    const inv = join(dir, 'hosts.ini')
    writeFileSync(inv, `[etcd]\nbehind ansible_host=${h2.address} ansible_user=root ansible_ssh_private_key_file=${ctx.lab.paths.privateKey} ansible_ssh_common_args='-o ProxyJump=root@${h1.address} -o UserKnownHostsFile=${ctx.lab.paths.knownHosts}'\n`)
    const [m] = membersOf(loadInventory(inv)).members
    expect(m.ssh.jump?.host).toBe(h1.address)
    const host = await SshHost.connect(m.name, m.ssh)
    try {
      expect((await host.exec(trusted('hostname'))).stdout.trim()).toBe(h2.name)
    } finally {
      host.close()
    }
  })

  it('goes through a ProxyJump chain from an ssh config, each hop read from its own Host block', async () => {
    const [h1, h2] = ctx.lab.state.hosts
    const dir = mkdtempSync(join(tmpdir(), 'chain-'))
    const config = join(dir, 'ssh_config')
    // h1 is reached from h2, and h2 from h1: two hops, each resolved through the config.
    writeFileSync(config, [
      `Host hop1\n  HostName ${h1.address}`, `Host hop2\n  HostName ${h2.address}`,
      `Host target\n  HostName ${h1.address}\n  ProxyJump hop1,hop2`,
      `Host *\n  User root\n  IdentityFile ${ctx.lab.paths.privateKey}\n  UserKnownHostsFile ${ctx.lab.paths.knownHosts}`,
    ].join('\n'))
    const inv = join(dir, 'hosts.ini')
    writeFileSync(inv, '[etcd]\ntarget\n')
    const [m] = membersOf(loadInventory(inv), 'etcd', { ssh: { source: sshConfigSource({ file: config, home: dir }), home: dir } }).members
    expect(m.ssh).toMatchObject({ host: h1.address, jump: { host: h2.address, jump: { host: h1.address } } })
    const host = await SshHost.connect(m.name, m.ssh)
    try {
      expect((await host.exec(trusted('hostname'))).stdout.trim()).toBe(h1.name)
      // The last hop is h2: the session on h1 comes from h2's address.
      expect((await host.exec(trusted('echo $SSH_CLIENT'))).stdout.split(' ')[0]).toBe(h2.address)
    } finally {
      host.close()
    }
  })

  it('runs commands as root through passwordless sudo, and says so when sudo wants a password', async () => {
    const pub = (await onHost(ctx.lab, 2, 'cat /root/.ssh/authorized_keys')).trim()
    await onHost(ctx.lab, 2, [
      // '*': no password, but not a locked account (sshd without PAM refuses those).
      "useradd -m -s /bin/sh -p '*' ops && useradd -m -s /bin/sh -p '*' dev",
      `for u in ops dev; do mkdir -p /home/$u/.ssh && echo '${pub}' > /home/$u/.ssh/authorized_keys && chown -R $u: /home/$u/.ssh && chmod 700 /home/$u/.ssh; done`,
      "echo 'ops ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/ops && echo 'dev ALL=(ALL) ALL' > /etc/sudoers.d/dev && chmod 440 /etc/sudoers.d/*",
    ].join(' && '))
    const ops = await SshHost.connect('ops', target(1, { user: 'ops', become: true }))
    try {
      expect((await ops.exec(trusted('id -u'))).stdout.trim()).toBe('0')
      expect((await ops.exec(trusted('id -un'), { noBecome: true })).stdout.trim()).toBe('ops')
    } finally {
      ops.close()
    }
    const dev = await SshHost.connect('dev', target(1, { user: 'dev', become: true }))
    try {
      const err = await dev.exec(trusted('id -u')).catch((e) => e)
      expect(err).toBeInstanceOf(RemoteCommandError)
      expect(err.message).toMatch(/password is required/)
      expect(err.hint).toMatch(/passwordless sudo \(NOPASSWD\)/)
    } finally {
      dev.close()
    }
  })

  it('starts a command\'s login shell before its script is known, then runs the script with the rest of stdin', async () => {
    const pub = (await onHost(ctx.lab, 2, 'cat /root/.ssh/authorized_keys')).trim()
    // A login shell that leaves a mark and talks on stdout, as profile scripts do.
    await onHost(ctx.lab, 2, [
      "useradd -m -s /bin/bash -p '*' lazy",
      `mkdir -p /home/lazy/.ssh && echo '${pub}' > /home/lazy/.ssh/authorized_keys && chown -R lazy: /home/lazy/.ssh && chmod 700 /home/lazy/.ssh`,
      "printf '%s\\n' 'echo \"login $$\" >> /tmp/lazy-logins' 'echo chatter' > /home/lazy/.bashrc",
    ].join(' && '))
    const logins = async () => (await onHost(ctx.lab, 2, 'cat /tmp/lazy-logins 2>/dev/null || true')).split('\n').filter(Boolean).length
    const waitFor = async (what: () => Promise<boolean>, label: string) => {
      for (let i = 0; i < 100 && !(await what()); i++) await new Promise((r) => setTimeout(r, 100))
      expect(await what(), label).toBe(true)
    }
    const h = await SshHost.connect('lazy', target(1, { user: 'lazy' }))
    try {
      h.startStandby()
      // Its login shell ran, though no script was given yet.
      await waitFor(async () => (await logins()) === 1, 'the standby\'s login shell ran')
      let out = ''
      const got = h.takeStandby(trusted('echo "runs as $(id -un)"; IFS= read -r l; echo "then read: $l"'), { onData: (d, s) => { if (s === 'stdout') out += d.toString() } })
      expect(got).toBeDefined()
      ;(await got!.channel).end('the rest of stdin\n')
      expect((await got!.result).code).toBe(0)
      expect(out).toBe('chatter\nruns as lazy\nthen read: the rest of stdin\n')
      expect(await logins(), 'no second login shell').toBe(1)
      expect(h.commandStarts).toBe(1)
      // Taken once only.
      expect(h.takeStandby(trusted('true'), {})).toBeUndefined()
    } finally {
      h.close()
    }
    // With a become password nothing starts early: sudo -S would be given it before the run
    // knows it will go on (a wrong one counts toward a lockout).
    const withPassword = await SshHost.connect('lazy', target(1, { user: 'lazy', become: true }), { becomePassword: 'never-sent' })
    try {
      withPassword.startStandby()
      expect(withPassword.commandStarts).toBe(0)
      expect(withPassword.takeStandby(trusted('true'), {})).toBeUndefined()
    } finally {
      withPassword.close()
    }
    // One never taken: when its connection closes it ends, having run nothing.
    const idle = await SshHost.connect('lazy', target(1, { user: 'lazy' }))
    idle.startStandby()
    await waitFor(async () => (await logins()) === 2, 'the second standby\'s login shell ran')
    idle.close()
    await waitFor(async () => (await onHost(ctx.lab, 2, 'pgrep -u lazy >/dev/null && echo left || echo none')).trim() === 'none', 'nothing of the unused standby is left on the host')
  })

  it('names the host and the reason when login is refused', async () => {
    const err = await SshHost.connect('etcd1', target(0, { user: 'nobody-here' })).catch((e) => e)
    expect(err.name).toBe('AuthError')
    expect(err.where).toBe('etcd1')
    expect(err.message).toMatch(/SSH login as nobody-here was refused/)
  })

  it('keeps a command\'s output, exit code and stderr when it fails', async () => {
    const h = await SshHost.connect('etcd1', target(0))
    try {
      const err = await h.exec(trusted("echo out; echo 'No space left on device' >&2; exit 7")).catch((e) => e)
      expect(err).toMatchObject({ code: 7, stdout: 'out\n', host: 'etcd1' })
      expect(err.message).toMatch(/exit code 7/)
      expect(err.hint).toMatch(/Free space/)
    } finally {
      h.close()
    }
  })
})

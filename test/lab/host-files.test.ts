import { describe, expect, it } from 'vitest'
import { etcHosts, knownHosts, sshdConfig } from '../../lib/lab/host-files.ts'
import { hostInitScript } from '../../lib/lab/init-script.ts'

const h1 = { name: 'lab-h1', address: '198.18.1.11' }
const h2 = { name: 'lab-h2', address: '198.18.1.12' }

describe('sshdConfig', () => {
  it('listens on the host address only, root by key only, no PAM, room for parallel sessions', () => {
    const text = sshdConfig(h1, '/usr/lib/openssh/sftp-server')
    for (const line of [
      'ListenAddress 198.18.1.11', 'HostKey /etc/ssh/ssh_host_ed25519_key', 'PermitRootLogin prohibit-password',
      'PasswordAuthentication no', 'UsePAM no', 'MaxStartups 100', 'MaxSessions 50', 'Subsystem sftp /usr/lib/openssh/sftp-server',
    ]) expect(text.split('\n')).toContain(line)
    expect(sshdConfig(h1)).not.toContain('Subsystem')
  })
})

describe('etcHosts / knownHosts', () => {
  it('lists every lab host so hosts resolve each other', () => {
    const text = etcHosts(h1, [h1, h2])
    expect(text).toContain('127.0.1.1\tlab-h1\n')
    expect(text).toContain('198.18.1.11\tlab-h1\n198.18.1.12\tlab-h2\n')
  })

  it('writes one line per host: address, key type, key (no comment)', () => {
    expect(knownHosts([{ address: '198.18.1.11', publicKey: 'ssh-ed25519 AAAAC3Nz root@lab-h1\n' }]))
      .toBe('198.18.1.11 ssh-ed25519 AAAAC3Nz\n')
  })
})

describe('hostInitScript', () => {
  const script = hostInitScript({
    hostname: 'lab-h1',
    diskDir: '/r/.lab/lab/hosts/h1/disk',
    rootDir: '/r/.lab/lab/hosts/h1/root',
    diskSize: '2G',
    install: [{ from: '/cache/etcd 3.5/etcd', to: '/usr/local/bin/etcd', mode: '0755' }],
    remove: ['/usr/bin/etcd'],
    mkdirs: [{ path: '/root/.ssh', mode: '0700' }],
  })

  it('builds the overlay root on a tmpfs disk and gives it its own proc, sys, dev, run and tmp', () => {
    expect(script).toContain('mount -t tmpfs -o size=2G,mode=0755 lab-disk "$D"')
    expect(script).toContain('mount -t overlay -o "lowerdir=/,upperdir=$D/upper,workdir=$D/work" lab-root "$R"')
    for (const fs of ['proc', 'sysfs', 'devpts']) expect(script).toMatch(new RegExp(`mount -t ${fs} `))
  })

  it('makes bash the host\'s /bin/sh when asked, in its own root, before it pivots into it', () => {
    expect(script).not.toContain('"$R/bin/sh"')
    const bash = hostInitScript({ hostname: 'lab-h1', diskDir: '/r/disk', rootDir: '/r/root', diskSize: '2G', install: [], remove: [], mkdirs: [], binSh: 'bash' })
    expect(bash).toContain('test -x "$R/bin/bash"\nln -sfn bash "$R/bin/sh"\n')
    expect(bash.indexOf('ln -sfn bash "$R/bin/sh"')).toBeLessThan(bash.indexOf('pivot_root'))
  })

  it('with a disk directory, bind-mounts it as the disk instead of a tmpfs (data larger than RAM)', () => {
    const onDisk = hostInitScript({
      hostname: 'lab-h1', diskDir: '/r/disk', rootDir: '/r/root', diskSize: '2G', diskBacking: '/var/tmp/etcd-rescue-lab/lab/h1',
      install: [], remove: [], mkdirs: [],
    })
    expect(onDisk).toContain('mount --bind /var/tmp/etcd-rescue-lab/lab/h1 "$D"')
    expect(onDisk).not.toContain('lab-disk')
    expect(onDisk).toContain('mount -t overlay -o "lowerdir=/,upperdir=$D/upper,workdir=$D/work" lab-root "$R"')
  })

  it('quotes paths, hides removed files and installs given ones inside the root', () => {
    expect(script).toContain(`install -D -m 0755 '/cache/etcd 3.5/etcd' "$R"/usr/local/bin/etcd`)
    expect(script).toContain('rm -rf "$R"/usr/bin/etcd')
    expect(script).toContain('mkdir -p -m 0700 "$R"/root/.ssh')
  })

  it('pivots into the root and ends by exec-ing tini as PID 1 running sshd', () => {
    const lines = script.trim().split('\n')
    expect(lines).toContain('pivot_root . .machine-root')
    expect(lines.at(-1)).toBe('exec /usr/bin/tini -- /usr/sbin/sshd -D -e -f /etc/ssh/sshd_config_lab')
    expect(lines[0]).toBe('set -eu')
  })
})

describe('labUp --bin-sh', () => {
  it('refuses a shell other than dash or bash before it makes anything', async () => {
    const { labUp } = await import('../../lib/lab/up.ts')
    await expect(labUp({ name: 'nosh', dir: '/nonexistent/etcd-rescue-lab-dir', binSh: 'zsh' as 'bash' })).rejects.toThrow('--bin-sh must be dash or bash, got "zsh"')
  })
})

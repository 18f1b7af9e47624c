// The lab against the real thing: namespaces, overlay roots, OpenSSH sshd with
// strict host-key checking, etcd 3.4 and 3.5 clusters. Needs root. Each suite
// brings up its own lab under a random name in its own directory, and takes it
// down in afterAll even when a test failed.
import { trusted } from '../../lib/shell/sh.ts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import {
  clusterKill, clusterLoad, clusterStart, clusterStop, labDown, labStatus, labUp, sha256Hex, sshExec,
} from '../../lib/lab/index.ts'
import { onHost, randomName, useLab } from '../support/lab.ts'


function netnsNames(): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0]).filter(Boolean)
}

function linkNames(): string[] {
  return (JSON.parse(execFileSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' })) as Array<{ ifname: string }>).map((l) => l.ifname)
}

function processGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z') // exited, only waiting to be reaped
  } catch {
    return true
  }
}

const ok = onHost

describe('lab with etcd 3.4.23', () => {
  const ctx = useLab({ hosts: 3 })

  it('writes the operator key (0600), known_hosts and an inventory Ansible reads', () => {
    const { paths, state } = ctx.lab
    expect(statSync(paths.privateKey).mode & 0o777).toBe(0o600)
    const known = readFileSync(paths.knownHosts, 'utf8').trim().split('\n')
    expect(known.map((l) => l.split(' ')[0])).toEqual(state.hosts.map((h) => h.address))
    const inventory = JSON.parse(execFileSync('ansible-inventory', ['-i', paths.inventory, '--list'], { encoding: 'utf8' }))
    expect(inventory.etcd.hosts).toEqual(state.hosts.map((h) => h.name))
    expect(inventory._meta.hostvars[`${ctx.name}-h2`]).toMatchObject({
      ansible_host: state.hosts[1].address,
      ansible_user: 'root',
      ansible_ssh_private_key_file: paths.privateKey,
      etcd_member_name: 'etcd2',
      etcd_bin_dir: '/usr/bin',
      etcd_data_dir: '/var/lib/etcd',
      etcd_service: 'process',
    })
  })

  it('keeps none of the caller\'s descriptors open in the processes that outlive up', () => {
    // A pipe held by the host's processes would keep e.g. a CI runner waiting for EOF.
    for (const h of ctx.lab.state.hosts) {
      for (const ref of [h.launcher!, h.init!]) expect(readdirSync(`/proc/${ref.pid}/fd`).sort()).toEqual(['0', '1', '2'])
    }
  })

  it('lets OpenSSH log into every host with strict host-key checking', async () => {
    for (const h of ctx.lab.state.hosts) {
      expect((await ok(ctx.lab, h.index, 'hostname')).trim()).toBe(h.name)
    }
  })

  it('refuses a host whose key is not the one known_hosts holds for its address', async () => {
    const { paths, state } = ctx.lab
    const lines = readFileSync(paths.knownHosts, 'utf8').trim().split('\n')
    // Host 2's key under host 1's address: what a changed host key looks like.
    const wrong = join(ctx.dir, 'wrong_known_hosts')
    writeFileSync(wrong, `${state.hosts[0].address} ${lines[1].split(' ').slice(1).join(' ')}\n`)
    const changed = await sshExec(ctx.lab, 1, trusted('true'), { knownHostsFile: wrong })
    expect(changed.code).toBe(255)
    expect(changed.stderr).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/)
    const empty = join(ctx.dir, 'empty_known_hosts')
    writeFileSync(empty, '')
    const unknown = await sshExec(ctx.lab, 1, trusted('true'), { knownHostsFile: empty })
    expect(unknown.code).toBe(255)
    expect(unknown.stderr).toMatch(/Host key verification failed/)
  })

  it('keeps files written on one host off the others and off the machine', async () => {
    const marker = `probe-${randomBytes(4).toString('hex')}`
    const paths = ['/var/lib', '/etc', '/tmp', '/var/log'].map((d) => `${d}/${marker}`)
    await ok(ctx.lab, 1, paths.map((p) => `echo h1 > ${p}`).join(' && '))
    expect(await ok(ctx.lab, 1, `cat ${paths[0]}`)).toBe('h1\n')
    const onH2 = await sshExec(ctx.lab, 2, trusted(`ls ${paths.join(' ')}`))
    expect(onH2.code).not.toBe(0)
    for (const p of paths) expect(() => statSync(p)).toThrow()
  })

  it('hides a process started on one host from the others', async () => {
    // Detached with every descriptor redirected, or the session would not end (FIELD-NOTES pitfall 4).
    await ok(ctx.lab, 1, 'setsid -f sleep 4242 >/dev/null 2>&1 </dev/null')
    const args = (text: string) => text.split('\n').map((l) => l.trim())
    expect(args(await ok(ctx.lab, 1, 'ps -eo args'))).toContain('sleep 4242')
    const h2 = args(await ok(ctx.lab, 2, 'ps -eo args; cat /proc/[0-9]*/cmdline | tr "\\000" " "; echo'))
    expect(h2.filter((l) => l.includes('sleep 4242') && !l.includes('ps -eo'))).toEqual([])
    expect(h2).toContain('/usr/bin/tini -- /usr/sbin/sshd -D -e -f /etc/ssh/sshd_config_lab') // its own PID 1
    expect((await ok(ctx.lab, 2, 'cat /proc/1/comm')).trim()).toBe('tini')
    await ok(ctx.lab, 1, 'kill $(pgrep -x sleep)')
  })

  it('gives each host its own hostname and address', async () => {
    for (const h of ctx.lab.state.hosts) {
      expect((await ok(ctx.lab, h.index, 'cat /etc/hostname; hostname')).split('\n').slice(0, 2)).toEqual([h.name, h.name])
      const addrs = await ok(ctx.lab, h.index, 'ip -4 -o addr show')
      expect(addrs).toContain(`inet ${h.address}/24`)
      for (const other of ctx.lab.state.hosts.filter((o) => o !== h)) expect(addrs).not.toContain(other.address)
    }
  })

  it('lets root mount a disk on /var/lib/etcd of one host only', async () => {
    await ok(ctx.lab, 1, 'mount -t tmpfs -o size=64m,mode=0700 etcd-disk /var/lib/etcd')
    expect((await ok(ctx.lab, 1, 'findmnt -n -o FSTYPE,SOURCE /var/lib/etcd')).trim()).toBe('tmpfs  etcd-disk')
    expect((await sshExec(ctx.lab, 2, trusted('findmnt -n /var/lib/etcd'))).code).toBe(1)
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain('etcd-disk')
    await ok(ctx.lab, 1, 'umount /var/lib/etcd')
  })

  it('reports up twice as one lab (idempotent) and shows it in status', async () => {
    const again = await labUp({ name: ctx.name, dir: ctx.dir })
    expect(again.alreadyUp).toBe(true)
    expect(again.state.hosts.map((h) => h.init!.pid)).toEqual(ctx.lab.state.hosts.map((h) => h.init!.pid))
    const [status] = await labStatus({ name: ctx.name, dir: ctx.dir })
    expect(status.hosts.map((h) => [h.running, h.netns, h.ssh])).toEqual([[true, true, true], [true, true, true], [true, true, true]])
  })

  it('starts a healthy 3-member cluster, loads it and stops it by PID', async () => {
    const started = await clusterStart(ctx.lab)
    expect(started.members.map((m) => m.name)).toEqual(['etcd1', 'etcd2', 'etcd3'])
    const members = await fetch(`${started.members[0].clientUrl}/v3/cluster/member/list`, { method: 'POST', body: '{}' }).then((r) => r.json())
    expect(members.members.map((m: { name: string }) => m.name).sort()).toEqual(['etcd1', 'etcd2', 'etcd3'])
    const version = await fetch(`${started.members[1].clientUrl}/version`).then((r) => r.json())
    expect(version.etcdserver).toBe('3.4.23')

    const manifestFile = join(ctx.dir, 'manifest.json')
    const load = await clusterLoad(ctx.lab, { keys: 200, seed: 'e2e', manifestFile })
    expect(load.keys).toBe(200)
    expect(JSON.parse(readFileSync(manifestFile, 'utf8'))).toEqual(load.manifest)
    // Read a key back from another member with etcdctl on that host: same bytes.
    const key = Object.keys(load.manifest)[137]
    const value = await ok(ctx.lab, 3, `ETCDCTL_API=3 etcdctl get --print-value-only ${key} | head -c -1 | sha256sum`)
    expect(value.split(' ')[0]).toBe(load.manifest[key])
    expect(sha256Hex(Buffer.from(''))).not.toBe(load.manifest[key])

    const stopped = await clusterStop(ctx.lab, { hosts: [2] })
    expect(stopped).toHaveLength(1)
    expect(stopped[0].pids).toHaveLength(1)
    const killed = await clusterKill(ctx.lab)
    expect(killed.map((k) => k.pids.length)).toEqual([1, 0, 1])
    expect((await clusterStop(ctx.lab)).every((s) => s.pids.length === 0)).toBe(true)
    // A data dir that already holds a member is not silently reused.
    await expect(clusterStart(ctx.lab)).rejects.toThrow(/already holds a member/)
    const fresh = await clusterStart(ctx.lab, { wipe: true })
    expect(fresh.members).toHaveLength(3)
  })

  it('leaves nothing behind after down: no namespaces, links, mounts or processes', async () => {
    const { state, paths } = ctx.lab
    const pids = state.hosts.flatMap((h) => [h.init!.pid, h.launcher!.pid])
    await labDown({ name: ctx.name, dir: ctx.dir })
    expect(netnsNames().filter((n) => n.startsWith(`er-${ctx.name}-`))).toEqual([])
    expect(linkNames().filter((l) => l === `er-${ctx.name}` || l.startsWith(`er-${ctx.name}-`))).toEqual([])
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(paths.dir)
    for (const pid of pids) expect(processGone(pid), `PID ${pid}`).toBe(true)
    expect(() => statSync(paths.dir)).toThrow()
    // Twice is fine.
    expect((await labDown({ name: ctx.name, dir: ctx.dir })).found).toBe(false)
  })
})

describe('lab with etcd 3.5.30', () => {
  const ctx = useLab({ hosts: 3, etcd: '3.5.30' })

  it('looks like a 3.5 machine: only the 3.5 binaries, in /usr/local/bin', async () => {
    const out = await ok(ctx.lab, 2, 'command -v etcd etcdctl etcdutl; etcd --version | head -n 1; ls /usr/bin/etcd 2>&1 || true')
    expect(out).toContain('/usr/local/bin/etcd\n/usr/local/bin/etcdctl\n/usr/local/bin/etcdutl\n')
    expect(out).toContain('etcd Version: 3.5.30')
    expect(out).toMatch(/ls: cannot access '\/usr\/bin\/etcd'/)
    expect(readFileSync(ctx.lab.paths.inventory, 'utf8')).toContain('etcd_bin_dir=/usr/local/bin')
    // The machine itself still has its own 3.4.
    expect(statSync('/usr/bin/etcd').isFile()).toBe(true)
  })

  it('starts a healthy 3-member 3.5.30 cluster', async () => {
    const started = await clusterStart(ctx.lab)
    for (const m of started.members) {
      const health = await fetch(`${m.clientUrl}/health`).then((r) => r.json())
      expect(health.health).toBe('true')
      expect((await fetch(`${m.clientUrl}/version`).then((r) => r.json())).etcdserver).toBe('3.5.30')
    }
    const load = await clusterLoad(ctx.lab, { keys: 50 })
    expect(Object.keys(load.manifest)).toHaveLength(50)
  })
})

describe('lab failures', () => {
  let dir = ''
  const made: string[] = []
  const up = (name: string, options: { hosts: number; etcd?: string; disk?: string }) => {
    made.push(name)
    return labUp({ name, dir, ...options })
  }
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'etcd-rescue-lab-test-'))
  })
  afterAll(async () => {
    for (const name of made) await labDown({ name, dir })
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it('rolls a failed up back completely (3.5 binaries do not fit a 64M disk)', async () => {
    const name = randomName()
    await expect(up(name, { hosts: 2, etcd: '3.5.30', disk: '64M' })).rejects.toThrow(/stopped while booting/)
    expect(netnsNames().filter((n) => n.startsWith(`er-${name}-`))).toEqual([])
    expect(linkNames().filter((l) => l.startsWith(`er-${name}`))).toEqual([])
    expect(() => statSync(join(dir, name))).toThrow()
  })

  it('gives concurrent labs different subnets', async () => {
    const [a, b] = await Promise.all([up(randomName(), { hosts: 1 }), up(randomName(), { hosts: 1 })])
    expect(a.state.subnet.k).not.toBe(b.state.subnet.k)
    expect((await ok(a, 1, 'hostname')).trim()).toBe(a.state.hosts[0].name)
    expect((await ok(b, 1, 'hostname')).trim()).toBe(b.state.hosts[0].name)
    // Hosts of different labs do not reach each other: their bridges are separate and nothing forwards.
    const reach = (address: string) => `timeout 1 bash -c 'echo > /dev/tcp/${address}/22'`
    expect((await sshExec(a, 1, trusted(reach(b.state.hosts[0].address)))).code).not.toBe(0)
    expect((await sshExec(a, 1, trusted(reach(a.state.hosts[0].address)))).code).toBe(0)
    expect(readFileSync(`/proc/sys/net/ipv4/conf/${a.state.bridge}/forwarding`, 'utf8').trim()).toBe('0')
    await labDown({ name: a.name, dir })
    await labDown({ name: b.name, dir })
  })

  it('takes down a lab one of whose hosts already died, after refusing to call it up', async () => {
    const name = randomName()
    const lab = await up(name, { hosts: 2 })
    process.kill(lab.state.hosts[0].init!.pid, 'SIGKILL')
    await new Promise((r) => setTimeout(r, 200))
    await expect(labUp({ name, dir })).rejects.toThrow(/exists but is not fully up \(\S+-h1 stopped\)/)
    const [status] = await labStatus({ name, dir })
    expect(status.hosts.map((h) => h.running)).toEqual([false, true])
    await labDown({ name, dir })
    expect(netnsNames().filter((n) => n.startsWith(`er-${name}-`))).toEqual([])
    expect(processGone(lab.state.hosts[1].init!.pid)).toBe(true)
  })
})

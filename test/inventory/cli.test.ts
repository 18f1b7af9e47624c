// scripts/inventory.mjs end to end (no network): flags, output and exit codes.
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { listJson, loadInventory } from '../../lib/inventory/members.ts'

const FIXTURES = 'test/fixtures/inventory'
// A HOME of its own: no ~/.ssh/config or ~/.ansible.cfg of whoever runs the tests.
const HOME = mkdtempSync(join(tmpdir(), 'inventory-cli-home-'))
const cli = (...args: string[]) => {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME }
  delete env.ANSIBLE_CONFIG
  const r = spawnSync(process.execPath, ['scripts/inventory.mjs', ...args], { encoding: 'utf8', timeout: 60_000, env })
  return { code: r.status, out: r.stdout, err: r.stderr }
}

// Each case starts node with the TypeScript loader: allow for a busy CI machine.
describe('scripts/inventory.mjs', { timeout: 30_000 }, () => {
  it('--help explains usage and exit codes', () => {
    const r = cli('--help')
    expect(r.code).toBe(0)
    expect(r.out).toMatch(/Usage: npx zx scripts\/inventory\.mjs -i INVENTORY/)
    expect(r.out).toMatch(/Exit codes:\n\s+0 .*\n\s+2 +bad input/)
  })

  it('--list prints the ansible-inventory JSON', () => {
    const r = cli('--inventory', `${FIXTURES}/basic/hosts.ini`, '--list')
    expect(r.code).toBe(0)
    expect(JSON.parse(r.out)).toEqual(JSON.parse(JSON.stringify(listJson(loadInventory(`${FIXTURES}/basic/hosts.ini`)))))
  })

  it('--host prints one host', () => {
    const r = cli('-i', `${FIXTURES}/basic/hosts.ini`, '--host', 'etcd-c')
    expect(r.code).toBe(0)
    expect(JSON.parse(r.out)).toMatchObject({ ansible_port: 2222, note: 'two words', retries: 3 })
  })

  it('--members prints a table with the SSH target, URLs, data dir and service', () => {
    const r = cli('-i', `${FIXTURES}/ssh-args.ini`, '--members')
    expect(r.code).toBe(0)
    expect(r.out).toContain("4 members in group 'etcd'")
    expect(r.out).toMatch(/^MEMBER +SSH TARGET +PEER URL +CLIENT URL +DATA DIR +SERVICE$/m)
    expect(r.out).toMatch(/^etcd1 +10\.1\.0\.1:22 via ops@bastion\.example\.com:2222 +https:\/\/10\.1\.0\.1:2380 +https:\/\/10\.1\.0\.1:2379 +\/var\/lib\/etcd +systemd \(etcd\)$/m)
    // ProxyJump jump1,jump2: the chain, nearest hop first.
    expect(r.out).toMatch(/^etcd2 +10\.1\.0\.2:22 via jump2:22 via jump1:22 +https/m)
  })

  it('--members --json --group prints the member set', () => {
    const r = cli('-i', `${FIXTURES}/nested.yml`, '--members', '--group', 'control', '--json')
    expect(r.code).toBe(0)
    const set = JSON.parse(r.out)
    expect(set.group).toBe('control')
    expect(set.members.map((m: { inventoryHost: string; ssh: { port: number } }) => [m.inventoryHost, m.ssh.port])).toEqual([['e1.prod.internal', 22], ['e4.prod.internal', 2200]])
  })

  it.each([
    [['--bogus'], /Unknown option '--bogus'/],
    [['-i', 'x.ini'], /no action/],
    [['-i', 'x.ini', '--list', '--members'], /choose one of --list, --members/],
    [['--list'], /no inventory: pass -i\/--inventory, or set inventory in ansible.cfg/],
    [['-i', 'x.ini', '--list', '--json'], /--group and --json go with --members/],
    [['-i', '/nonexistent.ini', '--list'], /inventory not found: \/nonexistent\.ini/],
    [['-i', `${FIXTURES}/bad/semicolon-comment.ini`, '--list'], /semicolon-comment\.ini:2: expected key=value after host 'node1', got ';'\n  hint: /],
    [['-i', `${FIXTURES}/basic/hosts.ini`, '--host', 'nope'], /no host named 'nope'/],
    [['-i', `${FIXTURES}/basic/hosts.ini`, '--members', '--group', 'monitoring'], /^warning: 2 members/m],
  ])('%j', (args, stderr) => {
    const r = cli(...args)
    expect(r.err).toMatch(stderr)
    expect(r.code).toBe(String(stderr).includes('warning') ? 0 : 2)
  })
})

describe('inventory.mjs --connection', { timeout: 30_000 }, () => {
  it('shows each SSH setting and where it came from, the inventory named by ansible.cfg', () => {
    const home = mkdtempSync(join(tmpdir(), 'connection-home-'))
    mkdirSync(join(home, '.ssh'))
    writeFileSync(join(home, '.ssh', 'config'), 'Host etcd-*\n  HostName 10.9.0.1\n  Port 2200\n  IdentityFile ~/.ssh/lab\n')
    writeFileSync(join(home, 'hosts.ini'), '[etcd]\netcd-a\n')
    writeFileSync(join(home, '.ansible.cfg'), '[defaults]\ninventory = ~/hosts.ini\nremote_user = ops\n')
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: home }
    delete env.ANSIBLE_CONFIG
    const r = spawnSync(process.execPath, ['scripts/inventory.mjs', '--host', 'etcd-a', '--connection', '-e', 'ansible_port=2201'], { encoding: 'utf8', env })
    expect(r.status, r.stderr).toBe(0)
    const row = (setting: string) => r.stdout.split('\n').find((l) => l.startsWith(`${setting} `))?.split(/ {2,}/)
    expect(row('hostname')).toEqual(['hostname', '10.9.0.1', `${home}/.ssh/config:2`])
    expect(row('port')).toEqual(['port', '2201', '-e ansible_port'])
    expect(row('user')).toEqual(['user', 'ops', `ansible.cfg ${home}/.ansible.cfg:3`])
    expect(row('identityfile')).toEqual(['identityfile', `${home}/.ssh/lab`, `${home}/.ssh/config:4`])
    expect(row('stricthostkeychecking')).toEqual(['stricthostkeychecking', 'yes', 'default'])
  })

  it('names the ssh config file and line it cannot use: exit 2', () => {
    const home = mkdtempSync(join(tmpdir(), 'connection-home-'))
    writeFileSync(join(home, 'ssh_config'), 'Host *\n  Match all\n')
    const r = cli('-i', `${FIXTURES}/basic/hosts.ini`, '--members', '-F', join(home, 'ssh_config'))
    expect(r.code).toBe(2)
    expect(r.err).toContain(`${join(home, 'ssh_config')}:2: member `)
    expect(r.err).toMatch(/`Match` blocks are not supported/)
  })
})

it('the example inventories parse and describe three members', () => {
  for (const path of ['inventory/example.ini', 'inventory/kubespray/inventory.ini']) {
    const r = cli('-i', resolve(path), '--members', '--json')
    expect(r.code, r.err).toBe(0)
    expect(JSON.parse(r.out).members).toHaveLength(3)
  }
}, 60_000)

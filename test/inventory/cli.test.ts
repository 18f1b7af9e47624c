// scripts/inventory.mjs end to end (no network): flags, output and exit codes.
import { spawnSync } from 'node:child_process'
import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { listJson, loadInventory } from '../../lib/inventory/members.ts'

const FIXTURES = 'test/fixtures/inventory'
const cli = (...args: string[]) => {
  const r = spawnSync(process.execPath, ['scripts/inventory.mjs', ...args], { encoding: 'utf8', timeout: 60_000 })
  return { code: r.status, out: r.stdout, err: r.stderr }
}

// Each case starts node with the TypeScript loader: allow for a busy CI machine.
describe('scripts/inventory.mjs', { timeout: 30_000 }, () => {
  it('--help explains usage and exit codes', () => {
    const r = cli('--help')
    expect(r.code).toBe(0)
    expect(r.out).toMatch(/Usage: npx zx scripts\/inventory\.mjs --inventory PATH/)
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
    expect(r.err).toMatch(/^warning: member j2: ProxyJump has 2 hops/m)
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
    [['--list'], /--inventory is required/],
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

it('the example inventories parse and describe three members', () => {
  for (const path of ['inventory/example.ini', 'inventory/kubespray/inventory.ini']) {
    const r = cli('-i', resolve(path), '--members', '--json')
    expect(r.code, r.err).toBe(0)
    expect(JSON.parse(r.out).members).toHaveLength(3)
  }
}, 60_000)

import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { hostJson, listJson, loadInventory } from '../../lib/inventory/members.ts'
import { sortedGroupsOf } from '../../lib/inventory/precedence.ts'
import { inputError, load } from './helpers.ts'

const fixture = (p: string) => loadInventory(resolve('test/fixtures/inventory', p))

describe('variable precedence (as Ansible: ansible-inventory agrees on these fixtures)', () => {
  const inv = fixture('precedence/hosts')

  it('orders groups by depth, then ansible_group_priority, then name', () => {
    expect(sortedGroupsOf(inv, 'h1')).toEqual(['alpha', 'parent', 'zeta'])
    expect(sortedGroupsOf(inv, 'h2')).toEqual(['alpha', 'parent', 'prio', 'zeta'])
  })

  it.each([
    ['a', 'h1', 'host_file', 'host_vars beat everything'],
    ['a', 'h2', 'all_inv', '[all:vars] is the lowest layer'],
    ['b', 'h2', 'all_file', 'group_vars/all beats [all:vars]'],
    ['c', 'h1', 'zeta_inv', 'a deeper group (zeta, depth 2) beats a shallower one (alpha, depth 1)'],
    ['d', 'h1', 'zeta_inv', 'a child group beats its parent'],
    ['e', 'h1', 'all_file', 'any group_vars file, even all, beats any [group:vars] section'],
    ['same_depth', 'h1', 'parent', 'at equal depth the later name wins (parent over alpha)'],
    ['same_depth', 'h2', 'prio', 'ansible_group_priority 10 beats names at the same depth'],
    ['file_same_depth', 'h1', 'parent', 'the same holds between group_vars files'],
    ['inline', 'h2', 'h2_host_vars_wins', 'host_vars/h2.yaml beats the inline host variable'],
    ['from_inventory', 'h1', 'alpha', 'a group section beats [all:vars]'],
  ])('%s on %s is %s: %s', (key, host, value) => {
    expect(hostJson(inv, host)[key]).toBe(value)
  })

  it('replaces whole dictionaries (hash_behaviour=replace)', () => {
    expect(hostJson(inv, 'h1').nested).toEqual({ x: 10 })
  })

  it('reads a group_vars directory in name order, recursively, skipping hidden, backup and other extensions', () => {
    const vars = hostJson(inv, 'h1')
    expect(vars.z_order).toBe('json in a subdirectory')
    expect(vars.z_only_first).toBe(1)
    expect(vars.z_json).toBe(true)
    expect(vars).not.toHaveProperty('never') // zeta/ wins over zeta.yml
  })

  it('does not turn ansible_group_priority into a variable', () => {
    expect(hostJson(inv, 'h2')).not.toHaveProperty('ansible_group_priority')
  })
})

describe('group_vars and host_vars files', () => {
  it.each<[Record<string, string>, string, string]>([
    [{ 'group_vars/all': 'x: noext', 'group_vars/all.yml': 'x: yml' }, 'noext', 'NAME beats NAME.yml'],
    [{ 'group_vars/all.yml': 'x: yml', 'group_vars/all.yaml': 'x: yaml' }, 'yml', '.yml beats .yaml'],
    [{ 'group_vars/all.yaml': 'x: yaml', 'group_vars/all.json': '{"x": "json"}' }, 'yaml', '.yaml beats .json'],
    [{ 'group_vars/all/a.yml': 'x: a', 'group_vars/all/b~': 'x: backup', 'group_vars/all/c.d/x.yml': 'x: dotted dir' }, 'a', 'backups and dotted dirs are skipped'],
  ])('%j → %s (%s)', (files, value) => {
    expect(hostJson(load({ 'hosts.ini': '[g]\nh\n', ...files }), 'h').x).toBe(value)
  })

  it('skips empty files and warns about vault-encrypted ones', () => {
    const inv = load({ 'hosts.ini': '[g]\nh\n', 'group_vars/g/a.yml': '', 'group_vars/g/b.yml': '{}', 'group_vars/g/c.yml': '$ANSIBLE_VAULT;1.1;AES256\n3132\n' })
    expect(hostJson(inv, 'h')).toEqual({})
    expect(inv.warnings).toEqual([expect.stringMatching(/c\.yml is vault-encrypted; its variables are not used/)])
  })

  it('refuses a vars file that is not a mapping', () => {
    const err = inputError(() => load({ 'hosts.ini': '[g]\nh\n', 'group_vars/g.yml': '- a\n' }))
    expect(err.where).toMatch(/group_vars\/g\.yml$/)
    expect(err.message).toMatch(/expected a mapping of variable names/)
  })
})

describe('directory inventories', () => {
  const inv = fixture('directory')

  it('merges the files in name order, recursing, and skips *.ini and *.md as Ansible does', () => {
    expect(listJson(inv)).toMatchObject({ etcd: { hosts: ['d1', 'd2', 'd3'] }, workers: { hosts: ['w1'] } })
    expect(inv.hosts.has('never-seen')).toBe(false)
    expect(inv.ignoredFiles.map((f) => f.split('/').pop())).toEqual(['README.md', 'ignored.ini'])
  })

  it('reads group_vars and host_vars beside the files', () => {
    expect(hostJson(inv, 'd2')).toMatchObject({ etcd_service: 'process', etcd_member_name: 'second', ansible_port: 2022 })
  })
})

describe('kubespray-shaped inventory', () => {
  const inv = fixture('kubespray/inventory.ini')

  it('finds the etcd members through [etcd:children]', () => {
    expect(inv.hostsOf('etcd')).toEqual(['node1', 'node2', 'node3'])
  })

  it('merges group_vars/all/*.yml, group_vars/k8s_cluster and host_vars', () => {
    expect(hostJson(inv, 'node1')).toMatchObject({ bin_dir: '/usr/local/bin', etcd_data_dir: '/var/lib/etcd', ansible_user: 'ubuntu', etcd_deployment_type: 'docker', kube_version: 'v1.30.4' })
    expect(hostJson(inv, 'node3')).toMatchObject({ etcd_deployment_type: 'host', ansible_port: 2203 })
  })
})

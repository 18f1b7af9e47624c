import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { hostJson, listJson, loadInventory } from '../../lib/inventory/members.ts'
import { Unsafe, Vault } from '../../lib/inventory/yaml-values.ts'
import { inputError, load } from './helpers.ts'

const yaml = (text: string, name = 'hosts.yml') => load({ [name]: text })

describe('YAML inventories', () => {
  it('reads groups with hosts, vars and nested children', () => {
    const inv = yaml('all:\n  vars: {v: 1}\n  children:\n    etcd:\n      hosts:\n        e1: {ansible_host: 10.0.0.1}\n        e[2:3]:\n      children:\n        sub:\n          hosts:\n            s1:2222:\n')
    expect(listJson(inv)).toMatchObject({ etcd: { hosts: ['e1', 'e2', 'e3'], children: ['sub'] }, sub: { hosts: ['s1'] } })
    expect(hostJson(inv, 's1')).toEqual({ v: 1, ansible_port: 2222 })
    expect(inv.hostsOf('etcd')).toEqual(['e1', 'e2', 'e3', 's1'])
  })

  it('accepts hosts: given as one string, as Ansible does', () => {
    expect(listJson(yaml('g:\n  hosts: h1\n')).g).toEqual({ hosts: ['h1'] })
  })

  it('types scalars as PyYAML (YAML 1.1) does, not as YAML 1.2', () => {
    const inv = yaml([
      'all:', '  hosts:', '    h:', '      a: yes', '      b: y', '      c: Off', '      d: 0755', '      e: 1:30', '      f: 1e3',
      '      g: 1.5e+3', '      h: 09', '      i: 0x1f', '      j: ~', '      k:', '      l: 2001-12-14', '      m: 2001-12-14 21:59:43.1Z',
      '      n: "3"', '      o: !!str 42', '      p: !!int "42"',
    ].join('\n'))
    expect(hostJson(inv, 'h')).toEqual({
      a: true, b: 'y', c: false, d: 493, e: 90, f: '1e3', g: 1500, h: '09', i: 31, j: null, k: null,
      l: '2001-12-14', m: '2001-12-14T21:59:43.100000+00:00', n: '3', o: '42', p: 42,
    })
  })

  it('keeps !unsafe and !vault values, printed as Ansible prints them', () => {
    const vars = hostJson(yaml('all:\n  hosts:\n    h:\n      u: !unsafe "{{ x }}"\n      s: !vault |\n        $ANSIBLE_VAULT;1.1;AES256\n        6233\n'), 'h')
    expect(vars.u).toEqual(new Unsafe('{{ x }}'))
    expect(vars.s).toBeInstanceOf(Vault)
    expect(JSON.parse(JSON.stringify(vars))).toEqual({ u: { __ansible_unsafe: '{{ x }}' }, s: { __ansible_vault: '$ANSIBLE_VAULT;1.1;AES256\n6233\n' } })
  })

  it('follows anchors and merge keys; explicit keys win over merged ones', () => {
    const inv = yaml('all:\n  vars:\n    base: &b {x: 1, y: 2}\n    merged:\n      <<: *b\n      y: 3\n  hosts:\n    h:\n')
    expect(hostJson(inv, 'h').merged).toEqual({ x: 1, y: 3 })
  })

  it('warns about duplicate keys and keeps the last, as Ansible does', () => {
    const inv = yaml('all:\n  hosts:\n    h:\n      a: 1\n      a: 2\n')
    expect(hostJson(inv, 'h')).toEqual({ a: 2 })
    expect(inv.warnings[0]).toMatch(/hosts\.yml:5: duplicate key 'a'/)
  })

  it('reads a JSON inventory', () => {
    expect(listJson(yaml('{"etcd": {"hosts": {"a": {"x": 1e3}}}}', 'hosts.json'))).toMatchObject({ etcd: { hosts: ['a'] }, _meta: { hostvars: { a: { x: 1000 } } } })
  })

  it('reads a file with no extension as YAML when it is a YAML mapping, else as INI', () => {
    expect(listJson(yaml('etcd:\n  hosts:\n    a:\n', 'hosts')).etcd).toEqual({ hosts: ['a'] })
    expect(listJson(yaml('[etcd]\na\n', 'hosts')).etcd).toEqual({ hosts: ['a'] })
  })
})

describe('bad YAML input: the file, the line and what was expected', () => {
  it('hosts: given as a list', () => {
    const file = join(resolve('test/fixtures/inventory/bad'), 'hosts-as-list.yml')
    const err = inputError(() => loadInventory(file))
    expect(err.exitCode).toBe(2)
    expect(err.where).toBe(`${file}:2`)
    expect(err.message).toBe("'hosts' of group 'etcd' must be a mapping, got a list")
    expect(err.hint).toMatch(/one key per host/)
  })

  it('a YAML syntax error', () => {
    const file = join(resolve('test/fixtures/inventory/bad'), 'yaml-syntax.yml')
    const err = inputError(() => loadInventory(file))
    expect(err.where).toMatch(/yaml-syntax\.yml:\d+$/)
    expect(err.message).toMatch(/^not valid YAML: /)
  })

  it.each([
    ['etcd:\n  host:\n    a:\n', 2, /unexpected key 'host' in group 'etcd'/],
    ['etcd: node1\n', 1, /group 'etcd' must be a mapping/],
    ['etcd:\n  hosts:\n    a: 3\n', 3, /host 'a' in group 'etcd' must have a mapping of variables/],
    ['etcd:\n  vars: [1]\n', 2, /'vars' of group 'etcd' must be a mapping/],
    ['plugin: aws_ec2\n', 1, /inventory plugin configuration/],
    ['etcd:\n  hosts:\n    n[3:1]:\n', 3, /is empty/],
    ['etcd:\n  vars:\n    ansible_group_priority: high\n', 3, /must be an integer/],
    ['- a\n- b\n', undefined, /must be a mapping of group names, got a list/],
    ['# nothing\n', undefined, /empty/],
    ['a: !python/object x\n', 1, /unsupported YAML tag/],
  ])('%j', (text, line, message) => {
    const err = inputError(() => yaml(text))
    expect(err.where).toMatch(line ? new RegExp(`hosts\\.yml:${line}$`) : /hosts\.yml$/)
    expect(err.message).toMatch(message)
  })
})

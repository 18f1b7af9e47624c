import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { hostJson, listJson, loadInventory } from '../../lib/inventory/members.ts'
import { inputError, load } from './helpers.ts'

const ini = (text: string) => load({ 'hosts.ini': text })
const vars = (text: string, host: string) => hostJson(ini(text), host)

describe('INI inventories', () => {
  it('puts hosts before the first section in ungrouped, unless they are in a group too', () => {
    const inv = ini('a\nb\n[g]\nb\n')
    expect(listJson(inv)).toMatchObject({ ungrouped: { hosts: ['a'] }, g: { hosts: ['b'] }, all: { children: ['ungrouped', 'g'] } })
  })

  it('types inline values as Python literals, keeping strings that are not', () => {
    expect(vars('[g]\nh a=3 b=False c=true d=None e="[1, 2]" f=007 g=1.5 h=yes', 'h'))
      .toEqual({ a: 3, b: false, c: 'true', d: null, e: [1, 2], f: '007', g: 1.5, h: 'yes' })
  })

  it('reads [g:vars] values whole: a # note stays in a string, but is a comment after a number', () => {
    expect(vars('[g]\nh\n[g:vars]\ns = two words # note\nn = 7 # note\nq = \'x\' # note\neq=a=b', 'h'))
      .toEqual({ s: 'two words # note', n: 7, q: 'x', eq: 'a=b' })
  })

  it('splits host lines like a shell: quotes, escapes, and # ending the line even mid-word', () => {
    expect(vars('[g]\nh a="x y" b=\'1 2\' c=p\\ q d=e#f ignored=1', 'h')).toEqual({ a: 'x y', b: '1 2', c: 'p q', d: 'e' })
  })

  it('takes a port from host:port only when the host is created', () => {
    expect(vars('[g]\nh:2222\n[k]\nh:3333', 'h')).toEqual({ ansible_port: 2222 })
  })

  it('lets a later line of the same host override its earlier variables', () => {
    expect(vars('[a]\nh x=1 y=1\n[b]\nh x=2', 'h')).toEqual({ x: 2, y: 1 })
  })

  it('accepts [g:children] and [g:vars] for a group declared further down', () => {
    const inv = ini('[p:children]\nc\n[c:vars]\nv=1\n[c]\nh\n')
    expect(listJson(inv)).toMatchObject({ p: { children: ['c'] }, c: { hosts: ['h'] } })
    expect(hostJson(inv, 'h')).toEqual({ v: 1 })
  })

  it('orders all.children like Ansible: ungrouped, explicit children of all, then the rest as declared', () => {
    expect(listJson(ini('[g]\nh\n[all:children]\nz\n[z]\ni\n[y]\n')).all).toEqual({ children: ['ungrouped', 'z', 'g', 'y'] })
  })

  it('expands ranges on host lines', () => {
    expect(listJson(ini('[g]\nn[1:3] x=1')).g).toEqual({ hosts: ['n1', 'n2', 'n3'] })
  })

  it('keeps group names as written (Ansible does not rename them by default)', () => {
    expect(listJson(ini('[etcd-nodes]\nh\n'))).toHaveProperty('etcd-nodes')
  })

  it('refuses a group that contains itself', () => {
    expect(inputError(() => ini('[a:children]\nb\n[b:children]\na\n')).message).toMatch(/loop/)
  })

  it('warns when a group and a host share a name', () => {
    expect(ini('[web]\nweb\n').warnings).toEqual(["found both a group and a host named 'web'"])
  })
})

describe('bad INI input: the file, the line and what was expected', () => {
  const bad = (name: string) => join(resolve('test/fixtures/inventory/bad'), name)
  it.each([
    ['semicolon-comment.ini', 2, /expected key=value after host 'node1', got ';'/, /';' starts a comment only at the start of a line/],
    ['key-without-value.ini', 6, /expected key=value in \[etcd:vars\], got 'etcd_service'/, undefined],
    ['host-var-without-value.ini', 2, /expected key=value after host 'node1', got 'ansible_become'/, /key=value/],
    ['vars-for-undefined-group.ini', 4, /section \[etdc:vars\] is for group 'etdc', which is not defined/, /Add a \[etdc\]/],
    ['unclosed-section.ini', 1, /unclosed section header '\[etcd': expected '\]'/, /\[group\]/],
    ['children-undefined-group.ini', 5, /\[etcd:children\] names group 'kube_control_plan', which is not defined/, /fix the name/],
  ])('%s', (file, line, message, hint) => {
    const err = inputError(() => loadInventory(bad(file)))
    expect(err.exitCode).toBe(2)
    expect(err.where).toBe(`${bad(file)}:${line}`)
    expect(err.message).toMatch(message)
    if (hint) expect(err.hint).toMatch(hint)
  })

  it.each([
    ['[g]\nh;x', /contains ';'/],
    ['[g]\nh x="open', /No closing quotation/],
    ['[g]\nh:', /ends in ':'/],
    ['[g:hosts2]\nh', /unknown type/],
    ['[a b]', /invalid section header/],
    ['[g] ; note\nh', /expected key=value after host '\[g\]'/],
    ['[g]\nn[3:1]', /is empty/],
    ['[g]\nh =1', /empty key/],
    ['[g:vars]\n= 1\n[g]', /empty key/],
  ])('%j', (text, message) => {
    const err = inputError(() => ini(text))
    expect(err.where).toMatch(/hosts\.ini:\d+$/)
    expect(err.message).toMatch(message)
  })

  it('names a missing inventory', () => {
    const err = inputError(() => loadInventory('/nonexistent/hosts.ini'))
    expect(err.exitCode).toBe(2)
    expect(err.message).toBe('inventory not found: /nonexistent/hosts.ini')
  })
})

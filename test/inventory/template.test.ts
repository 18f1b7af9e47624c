import { describe, expect, it } from 'vitest'
import { resolveVar, TemplateError } from '../../lib/inventory/template.ts'
import { Unsafe, Vault } from '../../lib/inventory/yaml-values.ts'

describe('resolveVar: {{ name }} and nothing more', () => {
  const vars = {
    ip: '10.0.0.1', port: 2380, url: 'https://{{ ip }}:{{ port }}', port_ref: '{{ port }}', chain: '{{ url }}',
    raw: new Unsafe('{{ ip }}'), loop: '{{ loop }}', filter: "{{ ip | default('x') }}", secret: new Vault('$ANSIBLE_VAULT;1.1;AES256\n00'),
    name: '{{ inventory_hostname }}-x',
  }
  it.each<[string, unknown]>([
    ['ip', '10.0.0.1'],
    ['url', 'https://10.0.0.1:2380'],
    ['port_ref', 2380], // one whole expression keeps its type
    ['chain', 'https://10.0.0.1:2380'],
    ['raw', '{{ ip }}'], // !unsafe is never templated
    ['name', 'h1-x'],
    ['missing', undefined],
  ])('%s → %j', (name, value) => {
    expect(resolveVar(vars, name, { inventory_hostname: 'h1' })).toEqual(value)
  })

  it.each([
    ['loop', /refers to itself/],
    ['filter', /Jinja expression etcd-rescue does not evaluate/],
    ['secret', /vault-encrypted/],
  ])('%s is refused', (name, message) => {
    expect(() => resolveVar(vars, name)).toThrow(TemplateError)
    expect(() => resolveVar(vars, name)).toThrow(message)
  })
})

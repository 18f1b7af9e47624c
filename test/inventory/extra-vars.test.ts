// -e as ansible-playbook reads it.
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parseExtraVars } from '../../lib/inventory/extra-vars.ts'
import { InputError } from '../../lib/errors.ts'

describe('-e / --extra-vars', () => {
  it('reads key=value words (values stay strings), mappings and @files; a later -e wins', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'extra-')), 'vars.yml')
    writeFileSync(file, 'ansible_become: yes\nansible_port: 2222\n')
    expect({ ...parseExtraVars(['ansible_user=ops "note=two words" ansible_port=22', '{"etcd_data_dir": "/d"}', `@${file}`]) }).toEqual({
      ansible_user: 'ops', note: 'two words', ansible_port: 2222, etcd_data_dir: '/d', ansible_become: true,
    })
  })

  it.each([['novalue'], ['1x=2'], ['@/nonexistent/vars.yml'], ['[1, 2]']])('refuses %s', (arg) => {
    expect(() => parseExtraVars([arg])).toThrow(InputError)
  })
})

// Just enough Jinja for inventory values: `{{ name }}` is replaced by the variable `name`
// (itself resolved the same way), e.g. `ansible_host: "{{ ip }}"`. Anything more (filters,
// lookups, hostvars[...]) is refused with the variable named, rather than guessed at:
// ansible-inventory does not evaluate templates either, and a wrong address is worse
// than an error. `!unsafe` values are never templated, as in Ansible.

import { Unsafe, Vault } from './yaml-values.ts'
import type { Vars } from './model.ts'

const SIMPLE = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g
const WHOLE = /^\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$/
const MAX_DEPTH = 10

/** Why a value could not be resolved; the caller names the host and file. */
export class TemplateError extends Error {}

/**
 * The value of variable `name` with simple templates resolved. `magic` holds what Ansible
 * provides itself (inventory_hostname, ...). Returns undefined when the variable is unset.
 */
export function resolveVar(vars: Vars, name: string, magic: Vars = {}): unknown {
  const lookup = (n: string, depth: number): unknown => {
    if (depth > MAX_DEPTH) throw new TemplateError(`'${name}' refers to itself through {{ ${n} }}`)
    const v = n in vars ? vars[n] : magic[n]
    if (v instanceof Unsafe) return v.value
    if (v instanceof Vault) throw new TemplateError(`'${n}' is vault-encrypted; etcd-rescue cannot decrypt it`)
    if (typeof v !== 'string' || !/\{[{%#]/.test(v)) return v
    // A value that is one expression keeps the referenced value's type, as in Ansible.
    const whole = WHOLE.exec(v.trim())
    if (whole) return need(whole[1], depth)
    const out = v.replace(SIMPLE, (_m, ref: string) => String(need(ref, depth)))
    if (/\{[{%#]/.test(out)) {
      throw new TemplateError(`'${n}' uses a Jinja expression etcd-rescue does not evaluate: ${v}`)
    }
    return out
  }
  const need = (ref: string, depth: number): unknown => {
    if (!(ref in vars) && !(ref in magic)) throw new TemplateError(`'${name}' refers to {{ ${ref} }}, which is not defined`)
    return lookup(ref, depth + 1)
  }
  return name in vars || name in magic ? lookup(name, 0) : undefined
}

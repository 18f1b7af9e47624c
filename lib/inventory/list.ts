// The JSON that `ansible-inventory --list` and `--host` print, so an operator can diff ours
// against Ansible's. Shape of --list: one key per group with `hosts` (direct members, in
// order; never for `all`) and `children`, empty keys dropped and groups with neither
// dropped (an empty `ungrouped` still shows in all.children, as in Ansible); `_meta.hostvars`
// holds each host's merged variables, hosts without variables left out.

import { InputError } from '../errors.ts'
import type { Inventory } from './model.ts'
import { hostVars } from './precedence.ts'

export function listJson(inv: Inventory): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const g of inv.groups.values()) {
    const entry: Record<string, string[]> = {}
    if (g.name !== 'all' && g.hosts.length > 0) entry.hosts = [...g.hosts]
    if (g.children.length > 0) entry.children = [...g.children]
    if (Object.keys(entry).length > 0) out[g.name] = entry
  }
  const hostvars: Record<string, unknown> = {}
  for (const name of inv.hosts.keys()) {
    const vars = hostVars(inv, name)
    if (Object.keys(vars).length > 0) hostvars[name] = vars
  }
  return sortKeys({ _meta: { hostvars }, ...out }) as Record<string, unknown>
}

/** One host's merged variables; InputError if there is no such host. */
export function hostJson(inv: Inventory, host: string): Record<string, unknown> {
  if (!inv.hosts.has(host)) {
    const known = [...inv.hosts.keys()]
    throw new InputError(`no host named '${host}' in ${inv.source}`, {
      hint: known.length ? `Hosts: ${known.slice(0, 20).join(', ')}${known.length > 20 ? ', ...' : ''}.` : 'The inventory has no hosts.',
    })
  }
  return sortKeys(hostVars(inv, host)) as Record<string, unknown>
}

/** Ansible prints with sort_keys=True; we do the same so the texts can be diffed too. */
function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys)
  if (typeof v !== 'object' || v === null || typeof (v as { toJSON?: unknown }).toJSON === 'function') return v
  const out: Record<string, unknown> = {}
  for (const k of Object.keys(v).sort()) {
    // defineProperty, so a variable named __proto__ stays a plain key.
    Object.defineProperty(out, k, { value: sortKeys((v as Record<string, unknown>)[k]), enumerable: true, writable: true, configurable: true })
  }
  return out
}

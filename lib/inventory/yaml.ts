// YAML inventories, as Ansible's yaml plugin reads them (ansible/plugins/inventory/yaml.py):
//
//   all:                      # top-level keys are groups
//     vars: {ansible_user: admin}
//     children:
//       etcd:
//         hosts:
//           node1: {ansible_host: 10.0.0.1}
//           node[2:3]:        # ranges and host:port work as in INI
//
// As in Ansible, `hosts: node1` (one string) means `hosts: {node1: }`. Where Ansible only
// warns and skips (a group that is not a mapping, an unknown key such as `host:`), we
// stop: a typo there silently drops hosts, and on a recovery day that is worse than an error.

import { InputError } from '../errors.ts'
import { HostPatternError, expandHostPattern } from './hostpattern.ts'
import { Inventory, whereText } from './model.ts'
import type { Loaded } from './yaml-values.ts'

const SECTIONS = ['vars', 'children', 'hosts']

const isMapping = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === null

const kind = (v: unknown): string => (Array.isArray(v) ? 'a list' : v === null ? 'null' : typeof v === 'object' ? 'an object' : `a ${typeof v} (${JSON.stringify(v)})`)

/** Fill `inv` from a parsed YAML inventory file. */
export function parseYamlInventory(loaded: Loaded, file: string, inv: Inventory): void {
  const data = loaded.value
  const at = (map: object, key: string) => ({ file, line: loaded.lineOf(map, key) })
  const fail = (message: string, map?: object, key?: string, hint?: string): never => {
    throw new InputError(message, { where: whereText(map && key !== undefined ? at(map, key) : { file }), hint })
  }

  if (!isMapping(data) || Object.keys(data).length === 0) {
    fail(data === null || isMapping(data) ? 'the YAML inventory is empty' : `a YAML inventory must be a mapping of group names, got ${kind(data)}`,
      undefined, undefined, 'Expected top-level groups, e.g. "all:" with "hosts:", "vars:" and "children:".')
  }
  const top = data as Record<string, unknown>
  if (top.plugin) {
    fail(`this is an inventory plugin configuration (plugin: ${String(top.plugin)}), not an inventory`, top, 'plugin',
      'etcd-rescue reads static inventories only. Dump yours with `ansible-inventory -i FILE --list --yaml --output hosts.yml` and use that.')
  }

  const parseGroup = (name: string, body: unknown, parent: object, key: string): void => {
    if (body !== null && !isMapping(body)) {
      fail(`group '${name}' must be a mapping with hosts, vars or children, got ${kind(body)}`, parent, key)
    }
    inv.addGroup(name, at(parent, key))
    if (body === null) return
    const group = body as Record<string, unknown>
    for (const section of Object.keys(group)) {
      if (!SECTIONS.includes(section)) {
        fail(`unexpected key '${section}' in group '${name}'`, group, section, 'A group may only have "hosts", "vars" and "children".')
      }
      let value = group[section]
      if (typeof value === 'string') value = Object.assign(Object.create(null), { [value]: null }) // `hosts: node1`
      if (value === null) continue
      if (!isMapping(value)) {
        const hint = section === 'hosts'
          ? 'Write hosts as a mapping, one key per host: "hosts:" then "  node1:" on the next line (not "- node1").'
          : `Write ${section} as a mapping of names.`
        fail(`'${section}' of group '${name}' must be a mapping, got ${kind(value)}`, group, section, hint)
      }
      const entries = value as Record<string, unknown>
      if (section === 'vars') {
        for (const [k, v] of Object.entries(entries)) inv.setGroupVar(name, k, v, at(entries, k))
      } else if (section === 'children') {
        for (const [child, childBody] of Object.entries(entries)) {
          parseGroup(child, childBody, entries, child)
          inv.addChild(name, child, at(entries, child))
        }
      } else {
        for (const [pattern, hostVars] of Object.entries(entries)) addHosts(name, pattern, hostVars, entries)
      }
    }
  }

  const addHosts = (group: string, pattern: string, hostVars: unknown, map: object): void => {
    if (hostVars !== null && !isMapping(hostVars)) {
      fail(`host '${pattern}' in group '${group}' must have a mapping of variables (or nothing), got ${kind(hostVars)}`, map, pattern)
    }
    let expanded: { hosts: string[]; port?: number }
    try {
      expanded = expandHostPattern(pattern)
    } catch (e) {
      if (!(e instanceof HostPatternError)) throw e
      return fail(e.message, map, pattern)
    }
    for (const name of expanded.hosts) {
      inv.addHost(name, at(map, pattern), group, expanded.port)
      const vars = (hostVars ?? {}) as Record<string, unknown>
      for (const [k, v] of Object.entries(vars)) inv.setHostVar(name, k, v, at(vars, k))
    }
  }

  for (const [name, body] of Object.entries(top)) parseGroup(name, body, top, name)
}

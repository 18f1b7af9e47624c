// The inventory as Ansible holds it (ansible/inventory/data.py, group.py, host.py):
// groups with direct hosts and child groups, hosts with their own variables, and the
// implicit groups `all` and `ungrouped`. Format readers (ini.ts, yaml.ts) fill it; the
// rules that need the whole picture (which groups hang under `all`, who is ungrouped,
// group depth) run once in reconcile(), as Ansible's reconcile_inventory does.

import { InputError } from '../errors.ts'

/** Where something was defined, for error messages: a file and, when known, a line. */
export interface Where {
  file: string
  line?: number
}

export const whereText = (w: Where): string => (w.line ? `${w.file}:${w.line}` : w.file)

export type Vars = Record<string, unknown>

/** A fresh variable map. No prototype, so a variable named `__proto__` is just a name. */
export const newVars = (): Vars => Object.create(null)

export interface Group {
  name: string
  /** Hosts listed directly in this group, in the order first listed. */
  hosts: string[]
  /** Child groups, in the order first added. */
  children: string[]
  parents: string[]
  /** Variables from the inventory source itself (`[g:vars]`, YAML `vars:`). */
  vars: Vars
  /** `ansible_group_priority`: among groups of equal depth, higher wins. Default 1. */
  priority: number
  where?: Where
  /** Where each of `vars` was set, for error messages. */
  varWhere: Map<string, Where>
}

export interface Host {
  name: string
  /** Variables from the inventory source itself (inline on host lines, YAML host maps). */
  vars: Vars
  /** Where the host first appeared. */
  where: Where
  /** Where each of `vars` was set, for error messages. */
  varWhere: Map<string, Where>
  /** Groups that list the host directly (an index of Group.hosts). */
  groups: Set<string>
}

export class Inventory {
  readonly groups = new Map<string, Group>()
  readonly hosts = new Map<string, Host>()
  /** Variables from group_vars/ and host_vars/ files, by group or host name. */
  readonly groupFileVars = new Map<string, Vars>()
  readonly hostFileVars = new Map<string, Vars>()
  /** Which file (and line) set each of those variables. */
  readonly groupFileWhere = new Map<string, Map<string, Where>>()
  readonly hostFileWhere = new Map<string, Map<string, Where>>()
  /** Things Ansible would accept but an operator should hear about. */
  readonly warnings: string[] = []
  /** Files a directory inventory skipped, as Ansible does (`*.ini`, `*.md`, ...). */
  readonly ignoredFiles: string[] = []
  /** depth() results; cleared whenever the group tree changes. */
  private readonly depths = new Map<string, number>()

  /**
   * @param source the inventory path as the user gave it (a file or a directory)
   * @param varsDir where group_vars/ and host_vars/ live: the directory, or the file's directory
   */
  constructor(readonly source: string, readonly varsDir: string) {
    this.addGroup('all')
    this.addGroup('ungrouped')
    this.addChild('all', 'ungrouped')
  }

  addGroup(name: string, where?: Where): Group {
    let group = this.groups.get(name)
    if (!group) {
      group = { name, hosts: [], children: [], parents: [], vars: newVars(), priority: 1, where, varWhere: new Map() }
      this.groups.set(name, group)
    }
    return group
  }

  /** Add a host (first mention wins its port and place) and put it in `group`. */
  addHost(name: string, where: Where, group?: string, port?: number): Host {
    let host = this.hosts.get(name)
    if (!host) {
      host = { name, vars: newVars(), where, varWhere: new Map(), groups: new Set() }
      // Ansible sets the port only when it creates the host: a later `h:2222` is ignored.
      if (port !== undefined) this.setHostVar(name, 'ansible_port', port, where, host)
      this.hosts.set(name, host)
    }
    if (group !== undefined) {
      const g = this.groups.get(group)
      if (!g) throw new Error(`bug: group ${group} must exist before hosts are added to it`)
      if (!host.groups.has(group)) {
        g.hosts.push(name)
        host.groups.add(group)
      }
    }
    return host
  }

  /** Make `child` (a group) a child of `parent`; refuses loops like Ansible does. */
  addChild(parent: string, child: string, where?: Where): void {
    const p = this.groups.get(parent)
    const c = this.groups.get(child)
    if (!p || !c) throw new Error(`bug: groups ${parent} and ${child} must exist before they are linked`)
    if (p.children.includes(child)) return
    if (parent === child || this.ancestors(parent).has(child)) {
      throw new InputError(`adding group '${child}' as a child of '${parent}' creates a loop`, {
        where: where && whereText(where),
        hint: 'A group cannot contain itself, directly or through its children.',
      })
    }
    p.children.push(child)
    c.parents.push(parent)
    this.depths.clear()
  }

  setGroupVar(group: string, key: string, value: unknown, where?: Where): void {
    const g = this.groups.get(group)!
    // Ansible consumes this one: it orders groups instead of becoming a variable.
    if (key === 'ansible_group_priority') {
      const n = typeof value === 'number' ? value : Number(value)
      if (!Number.isInteger(n)) {
        throw new InputError(`ansible_group_priority of group '${group}' must be an integer, got ${JSON.stringify(value)}`, { where: where && whereText(where) })
      }
      g.priority = n
      return
    }
    g.vars[key] = value
    if (where) g.varWhere.set(key, where)
  }

  setHostVar(name: string, key: string, value: unknown, where: Where, host = this.hosts.get(name)!): void {
    host.vars[key] = value
    host.varWhere.set(key, where)
  }

  /** Every group above `name` (not including itself). */
  ancestors(name: string): Set<string> {
    const seen = new Set<string>()
    const walk = (n: string): void => {
      for (const p of this.groups.get(n)?.parents ?? []) if (!seen.has(p)) { seen.add(p); walk(p) }
    }
    walk(name)
    return seen
  }

  /** Groups the host belongs to, directly or through parents, `all` included. */
  groupsOf(host: string): Set<string> {
    const out = new Set<string>()
    for (const g of this.hosts.get(host)?.groups ?? []) {
      out.add(g)
      for (const a of this.ancestors(g)) out.add(a)
    }
    return out
  }

  /** Depth below `all` by the longest path, which is what Ansible's group.depth ends up as. */
  depth(name: string, seen: string[] = []): number {
    const known = this.depths.get(name)
    if (known !== undefined) return known
    if (seen.includes(name)) throw new InputError(`group '${name}' is its own ancestor (${[...seen, name].join(' > ')})`)
    const g = this.groups.get(name)!
    const d = g.parents.length === 0 ? 0 : 1 + Math.max(...g.parents.map((p) => this.depth(p, [...seen, name])))
    this.depths.set(name, d)
    return d
  }

  /**
   * Hosts of a group and its descendants, as Ansible's group.get_hosts(): the group's own
   * hosts, then its children's, level by level, each host once. (Past the first level
   * Ansible walks a Python set, so its order there is not stable; ours is level order.)
   */
  hostsOf(name: string): string[] {
    const order: string[] = [name]
    for (let i = 0; i < order.length; i++) {
      for (const c of this.groups.get(order[i])!.children) if (!order.includes(c)) order.push(c)
    }
    const hosts = new Set<string>()
    for (const g of order) for (const h of this.groups.get(g)!.hosts) hosts.add(h)
    return [...hosts]
  }

  /** Ansible's reconcile_inventory: attach top groups to `all`, settle `ungrouped`. */
  reconcile(): void {
    for (const g of this.groups.values()) {
      if (g.name !== 'all' && g.parents.length === 0) this.addChild('all', g.name)
    }
    const ungrouped = this.groups.get('ungrouped')!
    const leave = new Set<string>()
    for (const host of this.hosts.values()) {
      const groups = this.groupsOf(host.name)
      if (groups.has('ungrouped')) {
        // A host listed before the first section and again in a group is not ungrouped.
        if ([...groups].some((g) => g !== 'all' && g !== 'ungrouped')) leave.add(host.name)
      } else if (groups.size === 0 || (groups.size === 1 && groups.has('all'))) {
        ungrouped.hosts.push(host.name)
        host.groups.add('ungrouped')
      }
    }
    ungrouped.hosts = ungrouped.hosts.filter((h) => !leave.has(h))
    for (const h of leave) this.hosts.get(h)!.groups.delete('ungrouped')
    for (const g of this.groups.values()) this.depth(g.name) // fail early on loops
    for (const name of this.groups.keys()) {
      if (this.hosts.has(name)) this.warnings.push(`found both a group and a host named '${name}'`)
    }
  }
}

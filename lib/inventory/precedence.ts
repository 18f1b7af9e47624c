// A host's variables, merged in Ansible's order (VariableManager.get_vars with the default
// VARIABLE_PRECEDENCE), lowest first; each layer replaces whole top-level keys
// (hash_behaviour=replace):
//   1. `all` vars from the inventory source        ([all:vars], YAML all.vars)
//   2. other groups' vars from the inventory source
//   3. group_vars/all files
//   4. other groups' group_vars files
//   5. the host's own vars from the inventory source (inline, YAML host map)
//   6. host_vars/HOST files
// Groups in 2 and 4 are ordered by depth below `all` (parents before children), then
// ansible_group_priority, then name, so of two groups at the same depth the later name
// wins. Note that 3 and 4 come after 1 and 2: any group_vars file beats any
// `[group:vars]` section, whatever the depths.

import { type Inventory, newVars, type Vars, type Where } from './model.ts'

/** Variables Ansible adds itself and ansible-inventory leaves out of its output. */
export const INTERNAL_VARS = new Set([
  'ansible_diff_mode', 'ansible_config_file', 'ansible_facts', 'ansible_forks', 'ansible_inventory_sources',
  'ansible_limit', 'ansible_playbook_python', 'ansible_run_tags', 'ansible_skip_tags', 'ansible_verbosity',
  'ansible_version', 'inventory_dir', 'inventory_file', 'inventory_hostname', 'inventory_hostname_short',
  'groups', 'group_names', 'omit', 'playbook_dir',
])

/** The host's groups other than `all`, in the order their variables apply. */
export function sortedGroupsOf(inv: Inventory, host: string): string[] {
  const keyed = [...inv.groupsOf(host)]
    .filter((g) => g !== 'all')
    .map((name) => ({ name, depth: inv.depth(name), priority: inv.groups.get(name)!.priority }))
  keyed.sort((a, b) => a.depth - b.depth || a.priority - b.priority || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  return keyed.map((g) => g.name)
}

/** The host's merged variables, as `ansible-inventory --host NAME` prints them. */
export function hostVars(inv: Inventory, host: string): Vars {
  return hostVarsWithOrigin(inv, host).vars
}

/** The same, plus where each winning value was set (file and line when known). */
export function hostVarsWithOrigin(inv: Inventory, host: string): { vars: Vars; where: Map<string, Where> } {
  const groups = sortedGroupsOf(inv, host)
  const g = (name: string) => inv.groups.get(name)!
  const h = inv.hosts.get(host)!
  type Layer = [Vars | undefined, Map<string, Where> | undefined, Where | undefined]
  const layers: Layer[] = [
    [g('all').vars, g('all').varWhere, g('all').where],
    ...groups.map((name): Layer => [g(name).vars, g(name).varWhere, g(name).where]),
    [inv.groupFileVars.get('all'), inv.groupFileWhere.get('all'), undefined],
    ...groups.map((name): Layer => [inv.groupFileVars.get(name), inv.groupFileWhere.get(name), undefined]),
    [h.vars, h.varWhere, h.where],
    [inv.hostFileVars.get(host), inv.hostFileWhere.get(host), undefined],
  ]
  const vars = newVars()
  const where = new Map<string, Where>()
  for (const [layer, origins, fallback] of layers) {
    if (!layer) continue
    Object.assign(vars, layer)
    for (const key of Object.keys(layer)) {
      const w = origins?.get(key) ?? fallback
      if (w) where.set(key, w)
      else where.delete(key)
    }
  }
  for (const name of INTERNAL_VARS) delete vars[name]
  return { vars, where }
}

// Ansible inventories, read exactly as Ansible reads them, and the etcd members in them.
// `ansible-inventory` is the reference: listJson/hostJson print what its --list/--host print.

export { loadInventory } from './load.ts'
export { Inventory, type Group, type Host, type Vars, type Where } from './model.ts'
export { hostVars } from './precedence.ts'
export { hostJson, listJson } from './list.ts'
export { membersOf, type Member, type MemberSet, type SshTarget } from './members.ts'
export { Unsafe, Vault } from './yaml-values.ts'

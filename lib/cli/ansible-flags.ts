// The flags Ansible users already type, meaning what they mean to ansible-playbook,
// shared by every entry point that reads an inventory: -i, -e, -u, --private-key, and
// -F for the ssh config (ssh's own letter). Also where the inventory comes from when -i
// is left out (ansible.cfg), and what the members need to be reached.
import { homedir } from 'node:os'
import { loadAnsibleConfig, type AnsibleConfig } from '../ansible/config.ts'
import { InputError } from '../errors.ts'
import { parseExtraVars } from '../inventory/extra-vars.ts'
import type { MemberContext } from '../inventory/members.ts'
import { sshConfigSource } from '../ssh/config.ts'

export const CONNECTION_FLAGS = {
  inventory: { type: 'string', short: 'i' },
  'extra-vars': { type: 'string', short: 'e', multiple: true },
  user: { type: 'string', short: 'u' },
  'private-key': { type: 'string' },
  'ssh-config': { type: 'string', short: 'F' },
} as const

/** Help text for CONNECTION_FLAGS, aligned like the rest of each command's help. */
export const CONNECTION_HELP = `  -i, --inventory PATH   Ansible inventory (INI, YAML or a directory; group_vars
                         and host_vars beside it are read). Default:
                         ansible.cfg's [defaults] inventory
  -e, --extra-vars VARS  key=value ..., @FILE.yml or a JSON/YAML mapping; beats
                         every inventory variable, as in Ansible (repeatable)
  -u, --user USER        SSH user for hosts with no ansible_user (default:
                         ansible.cfg remote_user, else the ssh config's User,
                         else $USER)
  --private-key FILE     key for hosts with no ansible_ssh_private_key_file
                         (default: ansible.cfg private_key_file, else the ssh
                         config's IdentityFile, else ~/.ssh/id_*)
  -F, --ssh-config FILE  read this ssh config instead of ~/.ssh/config and
                         /etc/ssh/ssh_config ("none": no ssh config at all)`

export interface ConnectionFlagValues {
  inventory?: string
  'extra-vars'?: string[]
  user?: string
  'private-key'?: string
  'ssh-config'?: string
}

export interface ConnectionSetup {
  /** The inventory path: -i, else ansible.cfg's. */
  inventory: string
  /** Everything membersOf needs besides the inventory. */
  members: MemberContext
  ansible: AnsibleConfig
}

/** Reads ansible.cfg and the flags; InputError (exit 2) when there is no inventory. */
export function connectionSetup(values: ConnectionFlagValues, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): ConnectionSetup {
  const home = homedir()
  const ansible = loadAnsibleConfig({ env, cwd, home })
  let inventory = values.inventory
  if (inventory === undefined && ansible.inventory) {
    const list = ansible.inventory.value
    if (list.length !== 1) {
      throw new InputError(`ansible.cfg names ${list.length} inventories (${list.join(', ')}); etcd-rescue reads one`, {
        where: ansible.inventory.from,
        hint: 'Pass the one holding the etcd hosts with -i.',
      })
    }
    inventory = list[0]
  }
  if (inventory === undefined) {
    throw new InputError('no inventory: pass -i/--inventory, or set inventory in ansible.cfg', {
      hint: `e.g. -i inventory/hosts.ini (ansible.cfg ${ansible.file ? `read: ${ansible.file}, it has no [defaults] inventory` : 'not found: none in $ANSIBLE_CONFIG, ./ansible.cfg, ~/.ansible.cfg, /etc/ansible/ansible.cfg'})`,
    })
  }
  const members: MemberContext = {
    ssh: { source: sshConfigSource({ file: values['ssh-config'], home }), home },
    ansible,
    extraVars: parseExtraVars(values['extra-vars'] ?? []),
  }
  if (values.user !== undefined) members.remoteUser = values.user
  if (values['private-key'] !== undefined) members.privateKey = values['private-key']
  return { inventory, members, ansible }
}

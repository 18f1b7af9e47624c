// `inventory`: show an inventory the way etcd-rescue reads it. --list and --host print
// what `ansible-inventory` prints (so the two can be diffed); --members shows the etcd
// members a recovery would act on. Argument handling and rendering only; the reading is
// in load.ts and members.ts.

import { userInfo } from 'node:os'
import { ExitCode, InputError, formatError } from '../errors.ts'
import { parseFlags } from './args.ts'
import { CONNECTION_FLAGS, CONNECTION_HELP, connectionSetup } from './ansible-flags.ts'
import { hostConnection, hostJson, listJson, loadInventory, membersOf, type MemberSet, type SshTarget } from '../inventory/members.ts'
import type { Connection } from '../inventory/ssh.ts'

export const INVENTORY_HELP = `Usage: npx zx scripts/inventory.mjs -i INVENTORY ACTION [options]
ACTION: --list | --host NAME [--connection] | --members

Reads an Ansible inventory exactly as Ansible does (INI, YAML or a directory of
them, with group_vars/ and host_vars/ beside it) and shows what etcd-rescue
sees.

Actions (one of):
  --list                 all groups and every host's merged variables as JSON,
                         the same as \`ansible-inventory -i PATH --list\`
  --host NAME            one host's merged variables as JSON, the same as
                         \`ansible-inventory -i PATH --host NAME\`
  --members              the etcd members a recovery acts on: member name, SSH
                         target (user@host:port, jump hosts if any), peer URL,
                         client URL, data dir and service mode, after checking
                         them all (names, URLs and data dirs unique and valid)
  --host NAME --connection
                         how etcd-rescue reaches NAME: every SSH setting with
                         its value and where it came from (inventory variable,
                         ssh config file:line, ansible.cfg file:line, -e, -u,
                         --private-key, or default)

Options (-e, -u, --private-key and -F count for --members and --connection;
--list and --host print the inventory alone, as ansible-inventory does):
${CONNECTION_HELP}
  --group NAME           with --members: the group of etcd hosts (default: etcd)
  --json                 with --members: JSON instead of a table
  -h, --help             this text

Member defaults (kubespray's): name etcd_member_name, else etcd1..etcdN by order
in the group; address access_ip, else ip, else ansible_host, else the inventory
name; URLs etcd_peer_url / etcd_client_url, else http(s)://ADDRESS:2380 / :2379
(https when etcd_cert_file, etcd_key_file, etcd_ca_file or etcd_cert_dir is
set);
etcd_data_dir (/var/lib/etcd), etcd_bin_dir (PATH, then /usr/local/bin),
etcd_service systemd|process (systemd), etcd_service_name (etcd), etcd_user.

Exit codes:
  0  printed
  2  bad input: a flag, or an inventory that does not parse or whose members are
     unusable; the message names the file and line`

export async function main(argv: string[]): Promise<number> {
  try {
    const { values } = parseFlags(argv, {
      ...CONNECTION_FLAGS,
      list: { type: 'boolean' },
      host: { type: 'string' },
      connection: { type: 'boolean' },
      members: { type: 'boolean' },
      group: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    }, 'inventory.mjs')
    if (values.help) {
      process.stdout.write(`${INVENTORY_HELP}\n`)
      return ExitCode.OK
    }
    const actions = [values.list && '--list', values.host !== undefined && '--host', values.members && '--members'].filter(Boolean)
    if (actions.length !== 1) {
      throw new InputError(actions.length ? `choose one of ${actions.join(', ')}` : 'no action: pass --list, --host NAME or --members', { hint: 'See inventory.mjs --help.' })
    }
    if (!values.members && (values.group !== undefined || values.json)) throw new InputError('--group and --json go with --members')
    if (values.connection && values.host === undefined) throw new InputError('--connection goes with --host NAME')

    const setup = connectionSetup(values)
    const inv = loadInventory(setup.inventory)
    for (const w of inv.warnings) if (!values.members) process.stderr.write(`warning: ${w}\n`)
    if (values.list) process.stdout.write(`${JSON.stringify(listJson(inv), null, 4)}\n`)
    else if (values.host !== undefined && values.connection) {
      const c = hostConnection(inv, values.host, setup.members)
      for (const w of c.warnings) process.stderr.write(`warning: ${w}\n`)
      process.stdout.write(connectionTable(values.host, c))
    } else if (values.host !== undefined) process.stdout.write(`${JSON.stringify(hostJson(inv, values.host), null, 4)}\n`)
    else {
      const set = membersOf(inv, values.group ?? 'etcd', setup.members)
      for (const w of set.warnings) process.stderr.write(`warning: ${w}\n`)
      process.stdout.write(values.json ? `${JSON.stringify(set, null, 2)}\n` : membersTable(set))
    }
    return ExitCode.OK
  } catch (err) {
    process.stderr.write(`${formatError(err)}\n`)
    return err instanceof InputError ? ExitCode.BAD_INPUT : ExitCode.FAILED
  }
}

/** `user@host:port`, with ` via JUMP` and ` (sudo)` / ` (sudo -u USER)` when they apply. */
export function sshLabel(t: SshTarget): string {
  const host = t.host.includes(':') ? `[${t.host}]` : t.host
  const self = `${t.user ? `${t.user}@` : ''}${host}:${t.port}`
  const via = t.jump ? ` via ${sshLabel(t.jump)}` : ''
  const sudo = t.become ? (t.becomeUser && t.becomeUser !== 'root' ? ` (sudo -u ${t.becomeUser})` : ' (sudo)') : ''
  return `${self}${via}${sudo}`
}

export function membersTable(set: MemberSet): string {
  const head = ['MEMBER', 'SSH TARGET', 'PEER URL', 'CLIENT URL', 'DATA DIR', 'SERVICE']
  const rows = set.members.map((m) => [
    m.name,
    sshLabel(m.ssh),
    m.peerUrl,
    m.clientUrl,
    m.dataDir,
    m.service === 'systemd' ? `systemd (${m.serviceName})` : 'process',
  ])
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ')
  const title = `${set.members.length} members in group '${set.group}' of ${set.source}`
  return `${title}\n${[head, ...rows].map(line).join('\n')}\n`
}

/** One row per SSH setting: its value and where it came from, `default` when nothing set it. */
export function connectionTable(name: string, { target: t, origins }: Connection): string {
  const from = (key: string): string => origins[key] ?? 'default'
  const keys = [t.privateKeyFile, ...(t.identityFiles ?? [])].filter((k): k is string => k !== undefined)
  const keyFrom = origins.identityfile?.split('\n') ?? []
  const chain: string[] = []
  for (let j = t.jump; j; j = j.jump) chain.push(`${j.user ? `${j.user}@` : ''}${j.host}:${j.port}`)
  const rows: string[][] = [
    ['hostname', t.host, origins.hostname ?? 'inventory name'],
    ['port', String(t.port), from('port')],
    ['user', t.user ?? `${process.env.USER ?? userInfo().username} (the local user)`, from('user')],
    ...(keys.length ? keys.map((k, i) => ['identityfile', k, keyFrom[i] ?? 'default']) : [['identityfile', '~/.ssh/id_ed25519, id_ecdsa, id_rsa (those that exist)', 'default']]),
    ['identitiesonly', t.identitiesOnly ? 'yes' : 'no (keys from the agent too, if SSH_AUTH_SOCK is set)', from('identitiesonly')],
    // Nearest hop first: the host is reached through chain[0], which is reached through chain[1]...
    ['proxyjump', chain.length ? chain.join(' via ') : 'none', origins.proxyjump ?? origins.proxycommand ?? 'default'],
    ['userknownhostsfile', t.knownHostsFiles?.join(' ') ?? '~/.ssh/known_hosts (or --known-hosts)', from('userknownhostsfile')],
    ['stricthostkeychecking', t.strictHostKeyChecking ?? 'yes', from('stricthostkeychecking')],
    ['connecttimeout', t.connectTimeoutMs !== undefined ? `${t.connectTimeoutMs / 1000} s` : '10 s (or --connect-timeout)', from('connecttimeout')],
    ['serveraliveinterval', t.serverAliveIntervalMs ? `${t.serverAliveIntervalMs / 1000} s` : '5 s', from('serveraliveinterval')],
    ['become', t.become ? 'yes (sudo -n)' : 'no', from('become')],
    ...(t.become ? [['becomeuser', t.becomeUser ?? 'root', from('becomeuser')]] : []),
  ]
  const head = ['SETTING', 'VALUE', 'FROM']
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ')
  return `How etcd-rescue reaches ${name}:\n${[head, ...rows].map(line).join('\n')}\n`
}

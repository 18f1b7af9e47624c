// The etcd members an inventory describes: the hosts of one group (default `etcd`), in
// Ansible's order, each with the name, URLs, data dir and SSH target etcd-rescue acts on.
// Everything is checked here, before any host is touched: a bad value stops the run with
// the host, the variable and the file (and line) it came from.
//
// Defaults follow kubespray, which is where most of these inventories come from: members
// are named etcd1..etcdN by their position in the group, the address others use is
// access_ip, else ip, else ansible_host, else the inventory name.

import { isIPv6 } from 'node:net'
import { posix } from 'node:path'
import { InputError } from '../errors.ts'
import { loadInventory } from './load.ts'
import { hostJson, listJson } from './list.ts'
import { type Inventory, type Vars, type Where, whereText } from './model.ts'
import { hostVarsWithOrigin } from './precedence.ts'
import { SshConfigError, connectionOf, type Connection, type ConnectionContext, type SshTarget } from './ssh.ts'
import type { Origins } from '../ssh/resolve.ts'
import { resolveVar, TemplateError } from './template.ts'

export { hostJson, listJson, loadInventory, type Inventory, type SshTarget }

export interface Member {
  inventoryHost: string   // host name in the inventory
  name: string            // etcd member name: etcd_member_name, else etcd1..etcdN by position in the group
  address: string         // access_ip, else ip, else ansible_host, else inventory host name
  peerUrl: string         // etcd_peer_url, default https://ADDRESS:2380 as kubespray (http for etcd_service=process without TLS vars)
  clientUrl: string       // etcd_client_url, default https://ADDRESS:2379 (likewise)
  dataDir: string         // etcd_data_dir, default /var/lib/etcd
  binDir?: string         // etcd_bin_dir; undefined = search PATH then /usr/local/bin on the host
  service: 'systemd' | 'process'  // etcd_service, default systemd
  serviceName: string     // etcd_service_name, default etcd
  etcdUser?: string       // etcd_user (owner of the data dir), optional
  /** Where each setting came from: the variable and its file:line, or which default. `--check` shows it. */
  origins: Record<'name' | 'address' | 'peerUrl' | 'clientUrl' | 'dataDir' | 'service' | 'serviceName', string>
  ssh: SshTarget
  /** Where each connection setting came from (inventory variable, ssh config file:line, ansible.cfg, ...). */
  sshOrigins: Origins
  vars: Record<string, unknown>   // all merged host vars
}

/** What else decides the members besides the inventory: -e, and how hosts are reached. */
export interface MemberContext extends ConnectionContext {
  /** -e: extra variables, above every inventory variable (as in Ansible). */
  extraVars?: Vars
}

export interface MemberSet {
  group: string
  members: Member[]
  /** Worth telling the operator, not worth stopping for (an even member count, ...). */
  warnings: string[]
  /** The inventory path as given. */
  source: string
}

/** Any of these set means the cluster speaks TLS, so default URLs are https. */
const TLS_VARS = ['etcd_cert_file', 'etcd_key_file', 'etcd_ca_file', 'etcd_cert_dir']
const SAFE_NAME = /^[A-Za-z0-9._-]+$/
const HOST_NAME = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?)*$/
const URL = /^(https?):\/\/(\[[0-9A-Fa-f:.]+\]|[^/:?#@\s[\]]+):([0-9]+)$/
const isHost = (h: string): boolean => HOST_NAME.test(h) || isIPv6(h)

/** The members of `group` (default `etcd`); InputError (exit 2) if any is unusable. */
export function membersOf(inv: Inventory, group = 'etcd', ctx: MemberContext = {}): MemberSet {
  const warnings = [...inv.warnings]
  if (!inv.groups.has(group)) throw missingGroup(inv, group)
  const hosts = inv.hostsOf(group)
  if (hosts.length === 0) {
    const g = inv.groups.get(group)!
    throw new InputError(`group '${group}' has no hosts`, { where: g.where && whereText(g.where), hint: `Add the etcd hosts under [${group}] (or to a child group).` })
  }

  const members = hosts.map((host, i) => memberOf(inv, host, i, warnings, ctx))
  checkUnique(members, inv, 'name', 'member name', 'Set a distinct etcd_member_name on each host.')
  checkUnique(members, inv, 'peerUrl', 'peer URL', 'Each member needs its own address or etcd_peer_url.')
  checkUnique(members, inv, 'clientUrl', 'client URL', 'Each member needs its own address or etcd_client_url.')
  checkUnique(members.map((m) => ({ ...m, place: `${m.ssh.host}:${m.ssh.port} ${m.dataDir}` })), inv, 'place', 'SSH target and data dir',
    'Two members on one machine need different etcd_data_dir values.')

  if (members.length % 2 === 0) {
    const n = members.length
    const tolerated = Math.floor((n - 1) / 2)
    warnings.push(`${n} members tolerate ${tolerated} failed member${tolerated === 1 ? '' : 's'}, no more than ${n - 1} would (quorum is ${n / 2 + 1}); an odd count is better`)
  }
  if (!orderIsStable(inv, group) && hosts.some((h) => !('etcd_member_name' in hostVarsWithOrigin(inv, h).vars))) {
    warnings.push(`group '${group}' gets hosts from several nested groups, where Ansible's order is not stable; default member names (etcd1..etcdN) depend on that order, so set etcd_member_name on each host`)
  }
  return { group, members, warnings, source: inv.source }
}

/** A host's variables with -e on top, and where each was set. */
function varsOf(inv: Inventory, host: string, ctx: MemberContext): { vars: Vars; where: Map<string, Where> } {
  const own = hostVarsWithOrigin(inv, host)
  const where = new Map(own.where)
  for (const k of Object.keys(ctx.extraVars ?? {})) where.set(k, { file: '-e' })
  return { vars: { ...own.vars, ...ctx.extraVars }, where }
}

/** How any inventory host is reached, and where each setting came from (inventory.mjs --connection). */
export function hostConnection(inv: Inventory, host: string, ctx: MemberContext = {}): Connection & { warnings: string[] } {
  if (!inv.hosts.has(host)) throw new InputError(`host '${host}' is not in the inventory`, { where: inv.source })
  const { vars, where } = varsOf(inv, host, ctx)
  const magic: Vars = { inventory_hostname: host, inventory_hostname_short: host.split('.')[0] }
  const at = (name: string): string | undefined => (where.get(name) ? whereText(where.get(name)!) : undefined)
  const warnings: string[] = []
  try {
    return { ...connectionOf(host, (name) => resolveVar(vars, name, magic), warnings, { ...ctx, whereIs: at }), warnings }
  } catch (e) {
    if (e instanceof SshConfigError || e instanceof TemplateError) {
      const variable = e instanceof SshConfigError ? e.variable : undefined
      throw new InputError(`host ${host}: ${e.message}`, { where: (variable && at(variable)) || whereText(inv.hosts.get(host)!.where) })
    }
    throw e
  }
}

function memberOf(inv: Inventory, host: string, index: number, warnings: string[], ctx: MemberContext): Member {
  const { vars, where } = varsOf(inv, host, ctx)
  const hostWhere = inv.hosts.get(host)!.where
  const magic: Vars = { inventory_hostname: host, inventory_hostname_short: host.split('.')[0] }
  const bad = (message: string, variable?: string, hint?: string): never => {
    const w: Where = (variable && where.get(variable)) || hostWhere
    throw new InputError(`member ${host}: ${message}`, { where: whereText(w), hint })
  }
  const get = (name: string): unknown => {
    try {
      return resolveVar(vars, name, magic)
    } catch (e) {
      if (e instanceof TemplateError) return bad(e.message, name, 'Set a literal value for etcd-rescue, e.g. in host_vars/.')
      throw e
    }
  }
  const str = (name: string, fallback?: string): string | undefined => {
    const v = get(name)
    if (v === undefined) return fallback
    if (v === null || v === '') return bad(`${name} is empty`, name)
    if (typeof v !== 'string' && typeof v !== 'number') return bad(`${name} must be a string, got ${JSON.stringify(v)}`, name)
    return String(v)
  }
  const pick = (names: string[]): [string | undefined, string | undefined] => {
    for (const n of names) if (get(n) !== undefined) return [n, str(n)]
    return [undefined, undefined]
  }

  const name = str('etcd_member_name', `etcd${index + 1}`)!
  if (!SAFE_NAME.test(name)) bad(`member name '${name}' may only hold letters, digits, '.', '_' and '-'`, 'etcd_member_name')

  let ssh: SshTarget
  let sshOrigins: Origins
  let configHostName: string | undefined
  const sshWarnings: string[] = []
  try {
    ({ target: ssh, origins: sshOrigins, configHostName } = connectionOf(host, get, sshWarnings, {
      ...ctx,
      whereIs: (v) => (where.get(v) ? whereText(where.get(v)!) : undefined),
    }))
  } catch (e) {
    if (e instanceof SshConfigError) return bad(e.message, e.variable)
    if (e instanceof InputError) throw new InputError(`member ${host}: ${e.message}`, { where: e.where, hint: e.hint })
    throw e
  }

  const [addressVar, addressValue] = pick(['access_ip', 'ip', 'ansible_host'])
  // With none of those, the HostName an ssh config gives the alias is the best address we know.
  const address = addressValue ?? configHostName ?? host
  if (!isHost(address)) {
    bad(`address '${address}'${addressVar ? ` (from ${addressVar})` : ' (the inventory name)'} is not a host name or IP address`, addressVar,
      'Set access_ip or ansible_host to the address the other members reach this host on.')
  }
  const service = str('etcd_service', 'systemd')!
  if (service !== 'systemd' && service !== 'process') return bad(`etcd_service must be 'systemd' or 'process', got '${service}'`, 'etcd_service')
  // kubespray's etcd speaks TLS on both URLs (etcd_peer_url/etcd_client_url default
  // to https://ADDRESS): so does a member under systemd, or one with TLS variables set.
  // A plain process (etcd_service=process, started without TLS flags) speaks http.
  const scheme = service === 'systemd' || TLS_VARS.some((v) => get(v) !== undefined && get(v) !== null && get(v) !== '') ? 'https' : 'http'
  const urlHost = address.includes(':') ? `[${address}]` : address
  const peerUrl = str('etcd_peer_url', `${scheme}://${urlHost}:2380`)!
  const clientUrl = str('etcd_client_url', `${scheme}://${urlHost}:2379`)!
  for (const [variable, url] of [['etcd_peer_url', peerUrl], ['etcd_client_url', clientUrl]]) {
    const problem = urlProblem(url)
    if (problem) bad(`${variable} '${url}' ${problem}`, vars[variable] === undefined ? addressVar : variable, 'Expected http(s)://HOST:PORT, e.g. https://10.0.0.1:2380.')
  }

  const dataDir = absolutePath(str('etcd_data_dir', '/var/lib/etcd')!, 'etcd_data_dir', bad)
  const binDirText = str('etcd_bin_dir')
  const binDir = binDirText === undefined ? undefined : absolutePath(binDirText, 'etcd_bin_dir', bad)
  const serviceName = str('etcd_service_name', 'etcd')!
  if (!/^[A-Za-z0-9:_.@-]+$/.test(serviceName)) bad(`etcd_service_name '${serviceName}' is not a systemd unit name`, 'etcd_service_name')
  // etcd runs as a service: a name with another unit type's suffix is a mistake (and would be held as NAME.service).
  const kind = /\.(socket|target|timer|mount|automount|path|slice|scope|device|swap)$/.exec(serviceName)
  if (kind) bad(`etcd_service_name '${serviceName}' names a .${kind[1]} unit; etcd runs as a service (etcd, or etcd.service)`, 'etcd_service_name')
  const etcdUser = str('etcd_user')
  if (etcdUser !== undefined && !/^[A-Za-z_][A-Za-z0-9_.-]*\$?$/.test(etcdUser)) bad(`etcd_user '${etcdUser}' is not a user name`, 'etcd_user')

  for (let t: SshTarget | undefined = ssh; t; t = t.jump) {
    if (!isHost(t.host)) bad(`SSH host '${t.host}' is not a host name or IP address`, 'ansible_host')
    if (t.user !== undefined && !/^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$/.test(t.user)) bad(`SSH user '${t.user}' is not a user name`, 'ansible_user')
  }
  warnings.push(...sshWarnings.map((w) => `member ${host}: ${w}`))

  const from = (variable: string | undefined, fallback: string): string => {
    const w = variable ? where.get(variable) : undefined
    return variable && get(variable) !== undefined ? `${variable}${w ? ` (${whereText(w)})` : ''}` : fallback
  }
  const urlFrom = (variable: string) => from(variable, `default ${scheme}://ADDRESS (${scheme === 'https' ? 'kubespray: etcd under systemd speaks TLS' : 'a plain process with no TLS variable'})`)
  const origins: Member['origins'] = {
    name: from('etcd_member_name', `default: etcd${index + 1}, position in the group (kubespray)`),
    address: from(addressVar, 'the inventory name'),
    peerUrl: urlFrom('etcd_peer_url'),
    clientUrl: urlFrom('etcd_client_url'),
    dataDir: from('etcd_data_dir', 'default /var/lib/etcd (kubespray)'),
    service: from('etcd_service', 'default systemd (kubespray)'),
    serviceName: from('etcd_service_name', 'default etcd (kubespray)'),
  }
  // The TLS variables templated like every other (kubespray's own default is
  // etcd_cert_dir: "{{ etcd_config_dir }}/ssl") and held to absolute paths; tlsFor reads them from vars.
  const tlsVars: Record<string, string> = {}
  for (const v of TLS_VARS) {
    const value = str(v)
    if (value !== undefined) tlsVars[v] = absolutePath(value, v, bad)
  }
  const member: Member = { inventoryHost: host, name, address, peerUrl, clientUrl, dataDir, service, serviceName, origins, ssh, sshOrigins, vars: { ...vars, ...tlsVars } }
  if (binDir !== undefined) member.binDir = binDir
  if (etcdUser !== undefined) member.etcdUser = etcdUser
  return member
}

function urlProblem(url: string): string | undefined {
  const m = URL.exec(url)
  if (!m) return /^https?:\/\/[^/]+:[0-9]+\/.*$/.test(url) ? 'must not have a path' : 'is not http(s)://HOST:PORT'
  const host = m[2]
  if (host.startsWith('[') ? !isIPv6(host.slice(1, -1)) : !HOST_NAME.test(host)) return `has an invalid host '${host}'`
  const port = Number(m[3])
  if (port < 1 || port > 65535) return `has an invalid port ${m[3]}`
  return undefined
}

function absolutePath(p: string, variable: string, bad: (message: string, variable?: string) => never): string {
  if (!p.startsWith('/')) bad(`${variable} '${p}' must be an absolute path`, variable)
  if (/[\x00-\x1f\x7f]/.test(p)) bad(`${variable} contains control characters`, variable)
  const normal = posix.normalize(p).replace(/\/+$/, '')
  if (normal === '') bad(`${variable} must not be /`, variable)
  return normal
}

function checkUnique<T extends Member>(members: T[], inv: Inventory, key: keyof T, what: string, hint: string): void {
  const seen = new Map<unknown, T>()
  for (const m of members) {
    const other = seen.get(m[key])
    if (other) {
      throw new InputError(`members ${other.inventoryHost} and ${m.inventoryHost} have the same ${what}: ${String(m[key])}`, {
        where: whereText(inv.hosts.get(m.inventoryHost)!.where),
        hint,
      })
    }
    seen.set(m[key], m)
  }
}

// Ansible walks nested groups past the first level through a Python set, so when two
// groups at one level both bring in further groups, the host order can change from run to run.
function orderIsStable(inv: Inventory, group: string): boolean {
  const seen = new Set([group, ...inv.groups.get(group)!.children])
  let level = inv.groups.get(group)!.children
  while (level.length > 0) {
    const next: string[] = []
    let contributors = 0
    for (const g of level) {
      const fresh = inv.groups.get(g)!.children.filter((c) => !seen.has(c))
      if (fresh.length > 0) contributors++
      for (const c of fresh) { seen.add(c); next.push(c) }
    }
    if (contributors > 1) return false
    level = next
  }
  return true
}

function missingGroup(inv: Inventory, group: string): InputError {
  const groups = [...inv.groups.keys()].filter((g) => g !== 'all' && g !== 'ungrouped')
  const ini = inv.ignoredFiles.filter((f) => f.endsWith('.ini'))
  const hints = [groups.length > 0 ? `Groups in this inventory: ${groups.join(', ')}; choose one with --group.` : 'The inventory defines no groups.']
  if (ini.length > 0) hints.push(`Ansible ignores *.ini files inside an inventory directory, and so do we: pass the file itself, e.g. --inventory ${ini[0]}.`)
  const hint = hints.join(' ')
  return new InputError(`group '${group}' is not in the inventory`, { where: inv.source, hint })
}

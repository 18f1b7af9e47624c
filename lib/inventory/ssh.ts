// How to reach a host over SSH, the way Ansible's ssh connection does: Ansible builds
// an OpenSSH command line from the host's variables (and ansible.cfg, and its own flags),
// and OpenSSH adds ~/.ssh/config. We build the same command line as data, then read the
// ssh config behind it with OpenSSH's rule: the first value obtained for an option wins.
//
// The command line, in Ansible's order (plugins/connection/ssh.py, _build_command):
//   1. ssh_args: ansible_ssh_args, else ansible.cfg [ssh_connection] ssh_args
//   2. -o StrictHostKeyChecking=no when host_key_checking is false (variable, else ansible.cfg)
//   3. -o Port=          ansible_ssh_port / ansible_port
//   4. -o IdentityFile=  ansible_ssh_private_key_file / ansible_private_key_file, else
//                        --private-key, else ansible.cfg private_key_file
//   5. -o User=          ansible_ssh_user / ansible_user, else -u, else ansible.cfg remote_user
//   6. -o ConnectTimeout= ansible_ssh_timeout / ansible_timeout, else ansible.cfg timeout
//      (Ansible always passes its default of 10 s; we leave it out so that the ssh
//      config's ConnectTimeout can count)
//   7. ansible_ssh_common_args, then ansible_ssh_extra_args
//   8. the host: ansible_ssh_host / ansible_host, else the inventory name. That name is
//      what the ssh config's Host patterns match, and a HostName there still applies.
// Of two variables for one option the legacy one wins (ansible_ssh_host over ansible_host,
// ...), because the ssh plugin lists it last. -e extra variables beat every variable:
// the caller merges them into `get`.

import { homedir } from 'node:os'
import { resolve } from 'node:path'
import { shlexSplit } from './shlex.ts'
import type { AnsibleConfig } from '../ansible/config.ts'
import type { CommandLineOption } from '../ssh/config.ts'
import { resolveSshTarget, sshOptions, type Origins, type ResolveContext, type Resolved } from '../ssh/resolve.ts'

// The connection target is lib/ssh's own type: the inventory fills it in, the
// SSH layer connects with it, so the two cannot drift apart.
export type { SshTarget } from '../ssh/connection.ts'
import type { SshTarget } from '../ssh/connection.ts'
export { sshOptions }

/** Why a variable cannot be used; the caller adds host and file. */
export class SshConfigError extends Error {
  constructor(readonly variable: string, message: string) {
    super(message)
  }
}

/** `get(name)` returns a variable's (templated) value or undefined. */
export type VarGetter = (name: string) => unknown

/** What lies around the inventory: ssh config, ansible.cfg, and the -u / --private-key flags. */
export interface ConnectionContext {
  /** The ssh config to read behind the command line. Default: none. */
  ssh?: ResolveContext
  ansible?: AnsibleConfig
  /** -u USER */
  remoteUser?: string
  /** --private-key FILE */
  privateKey?: string
  /** Where a variable was set (e.g. `hosts.ini:3`), for the origins. */
  whereIs?: (variable: string) => string | undefined
}

export interface Connection {
  target: SshTarget
  /** The HostName an ssh config gave the host, if one did. */
  configHostName?: string
  /** Setting (named as `ssh -G` names it, plus become/becomeuser) → where its value came from. */
  origins: Origins
}

export function sshTargetOf(inventoryHost: string, get: VarGetter, warnings: string[], ctx: ConnectionContext = {}): SshTarget {
  return connectionOf(inventoryHost, get, warnings, ctx).target
}

export function connectionOf(inventoryHost: string, get: VarGetter, warnings: string[], ctx: ConnectionContext = {}): Connection {
  const text = (name: string): string | undefined => {
    const v = get(name)
    if (v === undefined || v === null) return undefined
    if (typeof v !== 'string' && typeof v !== 'number') throw new SshConfigError(name, `${name} must be a string, got ${JSON.stringify(v)}`)
    return String(v)
  }
  const first = (...names: string[]): [string, string] | undefined => {
    for (const n of names) { const v = text(n); if (v !== undefined) return [n, v] }
    return undefined
  }
  const variable = (name: string): string => {
    const where = ctx.whereIs?.(name)
    if (where === '-e') return `-e ${name}`
    return `inventory variable ${name}${where ? ` (${where})` : ''}`
  }
  const cfg = ctx.ansible ?? {}
  const cfgFrom = (s: { from: string }): string => (s.from.startsWith('env ') ? s.from : `ansible.cfg ${s.from}`)
  const cli: CommandLineOption[] = []
  const push = (keyword: string, value: string, from: string): void => { cli.push({ keyword, value, from }) }

  // 1. ssh_args
  const sshArgsVar = text('ansible_ssh_args')
  if (sshArgsVar !== undefined) cli.push(...argsOptions('ansible_ssh_args', sshArgsVar, variable('ansible_ssh_args'), warnings))
  else if (cfg.sshArgs) cli.push(...argsOptions('ssh_args', cfg.sshArgs.value, cfgFrom(cfg.sshArgs), warnings))
  // 2. host_key_checking=false
  const checkingVar = ['ansible_ssh_host_key_checking', 'ansible_host_key_checking'].find((n) => get(n) !== undefined && get(n) !== null)
  if (checkingVar !== undefined) {
    if (!toBool(checkingVar, get(checkingVar))) push('StrictHostKeyChecking', 'no', variable(checkingVar))
  } else if (cfg.hostKeyChecking?.value === false) push('StrictHostKeyChecking', 'no', cfgFrom(cfg.hostKeyChecking))
  // 3. port
  const portVar = first('ansible_ssh_port', 'ansible_port')
  if (portVar) push('Port', String(toPort(portVar[0], portVar[1])), variable(portVar[0]))
  // 4. Ansible's key
  const keyVar = first('ansible_ssh_private_key_file', 'ansible_private_key_file')
  const key = keyVar ? { path: expandPath(keyVar[1])!, from: variable(keyVar[0]) }
    : ctx.privateKey ? { path: expandPath(ctx.privateKey)!, from: '--private-key' }
      : cfg.privateKeyFile ? { path: cfg.privateKeyFile.value, from: cfgFrom(cfg.privateKeyFile) } : undefined
  if (key) push('IdentityFile', key.path, key.from)
  // 5. user
  const userVar = first('ansible_ssh_user', 'ansible_user')
  if (userVar) push('User', userVar[1], variable(userVar[0]))
  else if (ctx.remoteUser) push('User', ctx.remoteUser, '-u')
  else if (cfg.remoteUser) push('User', cfg.remoteUser.value, cfgFrom(cfg.remoteUser))
  // 6. timeout
  const timeoutVar = first('ansible_ssh_timeout', 'ansible_timeout')
  if (timeoutVar) push('ConnectTimeout', timeoutVar[1], variable(timeoutVar[0]))
  else if (cfg.timeout) push('ConnectTimeout', String(cfg.timeout.value), cfgFrom(cfg.timeout))
  // 7. common and extra args
  for (const name of ['ansible_ssh_common_args', 'ansible_ssh_extra_args']) {
    const raw = get(name)
    if (raw === undefined || raw === null || raw === '') continue
    if (typeof raw !== 'string') throw new SshConfigError(name, `${name} must be a string, got ${JSON.stringify(raw)}`)
    cli.push(...argsOptions(name, raw, variable(name), warnings))
  }
  // 8. the host
  const hostVar = first('ansible_ssh_host', 'ansible_host')
  const sshHost = hostVar?.[1] ?? inventoryHost

  const ssh: ResolveContext = ctx.ssh ?? { source: { files: [], home: homedir() }, home: homedir() }
  let resolved: Resolved
  try {
    resolved = resolveSshTarget(sshHost, cli, ssh)
  } catch (e) {
    // A bad value from the command line is its variable's fault: name it.
    const from = (e as { where?: string }).where
    const name = from && /^inventory variable (\S+)/.exec(from)?.[1]
    if (name) throw new SshConfigError(name, `${name}: ${(e as Error).message}`)
    throw e
  }
  const { target, origins } = resolved
  warnings.push(...resolved.warnings)
  // ssh lower-cases the name; the inventory's spelling is kept when no HostName changed it.
  const configHostName = origins.hostname ? target.host : undefined
  if (!origins.hostname) target.host = sshHost
  if (hostVar && !origins.hostname) origins.hostname = variable(hostVar[0])
  // Ansible's key is offered first and must exist; the config's keys follow it.
  if (key && target.identityFiles?.[0] === resolve(key.path)) {
    target.privateKeyFile = target.identityFiles.shift()
    if (!target.identityFiles.length) delete target.identityFiles
  }

  const becomeSet = get('ansible_become') !== undefined && get('ansible_become') !== null
  const become = becomeSet ? toBool('ansible_become', get('ansible_become')) : cfg.become?.value ?? false
  origins.become = becomeSet ? variable('ansible_become') : cfg.become ? cfgFrom(cfg.become) : 'default'
  target.become = become
  if (become) {
    const becomeUser = first('ansible_sudo_user', 'ansible_become_user')
    target.becomeUser = becomeUser?.[1] ?? cfg.becomeUser?.value ?? 'root'
    origins.becomeuser = becomeUser ? variable(becomeUser[0]) : cfg.becomeUser ? cfgFrom(cfg.becomeUser) : 'default'
  }

  const method = text('ansible_become_method')
  if (become && method !== undefined && method !== 'sudo') warnings.push(`ansible_become_method is '${method}'; etcd-rescue uses sudo`)
  if (become && first('ansible_become_password', 'ansible_become_pass', 'ansible_sudo_pass')) {
    warnings.push('a become password is set, but etcd-rescue runs sudo non-interactively (sudo -n): the user needs NOPASSWD')
  }
  if (first('ansible_password', 'ansible_ssh_pass', 'ansible_ssh_password')) {
    warnings.push('an SSH password is set, but etcd-rescue authenticates with keys (the agent, default keys or the private key file)')
  }
  const connection = text('ansible_connection')
  if (connection !== undefined && !['ssh', 'smart', 'paramiko', 'paramiko_ssh'].includes(connection)) {
    warnings.push(`ansible_connection is '${connection}'; etcd-rescue connects over SSH anyway`)
  }
  return { target, origins, ...(configHostName !== undefined && { configHostName }) }
}

/** An ssh argv (as in ansible_ssh_common_args) as the options it sets, in order. */
function argsOptions(name: string, raw: string, from: string, warnings: string[]): CommandLineOption[] {
  let argv: string[]
  try {
    argv = shlexSplit(raw, { comments: false })
  } catch (e) {
    throw new SshConfigError(name, `${name} cannot be split like a shell line: ${(e as Error).message}`)
  }
  const out: CommandLineOption[] = []
  const letters: Record<string, string> = { p: 'Port', l: 'User', i: 'IdentityFile', J: 'ProxyJump' }
  for (const [opt, value] of sshOptions(argv)) {
    let keyword: string
    let v: string
    if (letters[opt]) {
      [keyword, v] = [letters[opt], value]
    } else if (opt === 'o') {
      const m = /^\s*([A-Za-z0-9]+)\s*(?:=\s*|\s+)(.*)$/.exec(value)
      if (!m) { warnings.push(`${name}: cannot read -o ${value}`); continue }
      [keyword, v] = [m[1], m[2].trim().replace(/^"(.*)"$/, '$1')]
    } else continue
    if (keyword.toLowerCase() === 'port') toPort(name, v)
    // Relative to where ssh runs, which is here.
    if (keyword.toLowerCase() === 'identityfile') v = expandPath(v)!
    out.push({ keyword, value: v, from })
  }
  return out
}

function toPort(name: string, v: unknown): number {
  const n = typeof v === 'number' ? v : /^\s*[0-9]+\s*$/.test(String(v)) ? Number(v) : NaN
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new SshConfigError(name, `${name} must be a port number (1-65535), got ${JSON.stringify(v)}`)
  return n
}

// Ansible's boolean(): the spellings it accepts; anything else is an error here, where
// Ansible would quietly read it as false.
const TRUE = new Set(['y', 'yes', 'on', '1', 'true', 't'])
const FALSE = new Set(['n', 'no', 'off', '0', 'false', 'f'])
export function toBool(name: string, v: unknown): boolean {
  if (typeof v === 'boolean') return v
  if (v === 1 || v === 0) return v === 1
  const s = typeof v === 'string' ? v.trim().toLowerCase() : undefined
  if (s !== undefined && TRUE.has(s)) return true
  if (s !== undefined && FALSE.has(s)) return false
  throw new SshConfigError(name, `${name} must be a boolean (true/false, yes/no), got ${JSON.stringify(v)}`)
}

/** `~` expanded, made absolute against the current directory (where ssh would look). */
function expandPath(p: string | undefined): string | undefined {
  if (!p) return undefined
  const expanded = p === '~' ? homedir() : p.startsWith('~/') ? homedir() + p.slice(1) : p
  return resolve(expanded)
}

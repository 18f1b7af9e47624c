// How to reach a host over SSH, from the same variables Ansible's ssh connection uses.
//
// Precedence follows Ansible and OpenSSH together:
// - Of two variables for one option the legacy one wins when both are set, because the
//   ssh plugin lists it last (ansible_ssh_host over ansible_host, ansible_ssh_port over
//   ansible_port, ansible_ssh_user over ansible_user, ansible_ssh_private_key_file over
//   ansible_private_key_file).
// - Ansible puts those on the ssh command line before ansible_ssh_args,
//   ansible_ssh_common_args and ansible_ssh_extra_args (in that order), and OpenSSH keeps
//   the first value it sees for an option. So `-o Port=` in common args only counts when
//   no port variable is set, and the first ProxyJump/-J/ProxyCommand wins.
// - ProxyJump: only the first hop is used (a warning says so). As in OpenSSH, `-o` and
//   `-i` options describe the target only: the jump host's key file and known_hosts are
//   left unset here, for the connection code to fill in (it reuses the target's).
// - ProxyCommand is understood in its common form `ssh -W %h:%p [-p PORT] [user@]bastion`;
//   any other ProxyCommand is reported and ignored.

import { homedir } from 'node:os'
import { resolve } from 'node:path'
import { shlexSplit } from './shlex.ts'

// The connection target is lib/ssh's own type: the inventory fills it in, the
// SSH layer connects with it, so the two cannot drift apart.
export type { SshTarget } from '../ssh/connection.ts'
import type { SshTarget } from '../ssh/connection.ts'

/** Why a variable cannot be used; the caller adds host and file. */
export class SshConfigError extends Error {
  constructor(readonly variable: string, message: string) {
    super(message)
  }
}

/** `get(name)` returns a variable's (templated) value or undefined. */
export type VarGetter = (name: string) => unknown

// OpenSSH options that take an argument (from ssh.c's getopt string).
const WITH_ARG = new Set('bBcDeEFiIJlLmoOpPQRSwW'.split(''))
const ARG_VARS = ['ansible_ssh_args', 'ansible_ssh_common_args', 'ansible_ssh_extra_args']

interface SshArgs {
  port?: number
  user?: string
  identity?: string
  knownHosts?: string
  strict?: string
  /** The first of ProxyJump / -J / ProxyCommand, as written. */
  proxy?: { kind: 'jump' | 'command'; value: string }
}

export function sshTargetOf(inventoryHost: string, get: VarGetter, warnings: string[]): SshTarget {
  const args = parseSshArgs(get, warnings)
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

  const portVar = first('ansible_ssh_port', 'ansible_port')
  const keyVar = first('ansible_ssh_private_key_file', 'ansible_private_key_file')
  // host_key_checking=false makes Ansible pass -o StrictHostKeyChecking=no ahead of the args.
  const checkingVar = ['ansible_ssh_host_key_checking', 'ansible_host_key_checking'].find((n) => get(n) !== undefined && get(n) !== null)
  const checking = checkingVar === undefined ? true : toBool(checkingVar, get(checkingVar))
  const become = toBool('ansible_become', get('ansible_become') ?? false)
  const target: SshTarget = {
    host: first('ansible_ssh_host', 'ansible_host')?.[1] ?? inventoryHost,
    port: portVar ? toPort(portVar[0], portVar[1]) : args.port ?? 22,
    user: first('ansible_ssh_user', 'ansible_user')?.[1] ?? args.user,
    privateKeyFile: expandPath(keyVar?.[1] ?? args.identity),
    knownHostsFile: expandPath(args.knownHosts?.split(/\s+/)[0]),
    strictHostKeyChecking: checking ? strictness(args.strict) : 'no',
    become,
  }
  if (become) target.becomeUser = first('ansible_sudo_user', 'ansible_become_user')?.[1] ?? 'root'
  const jump = args.proxy && jumpOf(args.proxy, warnings)
  if (jump) target.jump = jump

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
  return target
}

function parseSshArgs(get: VarGetter, warnings: string[]): SshArgs {
  const out: SshArgs = {}
  const setOnce = <K extends keyof SshArgs>(k: K, v: SshArgs[K]): void => { if (out[k] === undefined) out[k] = v }
  for (const name of ARG_VARS) {
    const raw = get(name)
    if (raw === undefined || raw === null || raw === '') continue
    if (typeof raw !== 'string') throw new SshConfigError(name, `${name} must be a string, got ${JSON.stringify(raw)}`)
    let argv: string[]
    try {
      argv = shlexSplit(raw, { comments: false })
    } catch (e) {
      throw new SshConfigError(name, `${name} cannot be split like a shell line: ${(e as Error).message}`)
    }
    for (const [opt, value] of sshOptions(argv)) {
      if (opt === 'p') setOnce('port', toPort(name, value))
      else if (opt === 'l') setOnce('user', value)
      else if (opt === 'i') setOnce('identity', value)
      else if (opt === 'J') setOnce('proxy', { kind: 'jump', value })
      else if (opt === 'o') {
        const m = /^\s*([A-Za-z]+)\s*(?:=\s*|\s+)(.*)$/.exec(value)
        if (!m) { warnings.push(`${name}: cannot read -o ${value}`); continue }
        const [key, v] = [m[1].toLowerCase(), m[2].trim().replace(/^"(.*)"$/, '$1')]
        if (key === 'port') setOnce('port', toPort(name, v))
        else if (key === 'user') setOnce('user', v)
        else if (key === 'identityfile') setOnce('identity', v)
        else if (key === 'userknownhostsfile') setOnce('knownHosts', v)
        else if (key === 'stricthostkeychecking') setOnce('strict', v)
        else if (key === 'proxyjump') setOnce('proxy', { kind: 'jump', value: v })
        else if (key === 'proxycommand') setOnce('proxy', { kind: 'command', value: v })
      }
    }
  }
  return out
}

/** [option letter, argument] pairs of an ssh argv, like getopt; other words are skipped. */
export function sshOptions(argv: string[]): [string, string][] {
  const out: [string, string][] = []
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]
    if (!word.startsWith('-') || word === '-') continue
    for (let j = 1; j < word.length; j++) {
      if (!WITH_ARG.has(word[j])) continue // a flag such as -q or -C
      const arg = j + 1 < word.length ? word.slice(j + 1) : argv[++i]
      if (arg !== undefined) out.push([word[j], arg])
      break
    }
  }
  return out
}

function jumpOf(proxy: NonNullable<SshArgs['proxy']>, warnings: string[]): SshTarget | undefined {
  if (proxy.kind === 'jump') {
    if (proxy.value.toLowerCase() === 'none') return undefined
    const hops = proxy.value.split(',')
    if (hops.length > 1) warnings.push(`ProxyJump has ${hops.length} hops (${proxy.value}); etcd-rescue uses only the first, ${hops[0]}`)
    const m = /^(?:ssh:\/\/)?(?:([^@]+)@)?(\[[^\]]+\]|[^:]+)(?::([0-9]+))?$/.exec(hops[0])
    if (!m) { warnings.push(`cannot read ProxyJump ${hops[0]}; connecting directly`); return undefined }
    return { host: m[2].replace(/^\[(.*)\]$/, '$1'), port: m[3] ? toPort('ProxyJump', m[3]) : 22, user: m[1], become: false }
  }
  // ProxyCommand: only `ssh ... -W %h:%p ... [user@]host` is a jump host we can use.
  let argv: string[] = []
  try { argv = shlexSplit(proxy.value, { comments: false }) } catch { /* reported below */ }
  const opts = sshOptions(argv.slice(1))
  const forward = opts.find(([o]) => o === 'W')?.[1]
  const words = argv.slice(1).filter((w, i, all) => !w.startsWith('-') && !(i > 0 && isOptionWithArg(all[i - 1])))
  if (!/(^|\/)ssh$/.test(argv[0] ?? '') || !forward || !/^\[?%h\]?:%p$/.test(forward) || words.length !== 1) {
    warnings.push(`ProxyCommand '${proxy.value}' is not of the form 'ssh -W %h:%p [user@]host'; it is ignored and hosts are reached directly`)
    return undefined
  }
  const [, user, host] = /^(?:([^@]+)@)?(.+)$/.exec(words[0])!
  const opt = (o: string): string | undefined => opts.find(([k]) => k === o)?.[1]
  const port = opt('p')
  return { host, port: port ? toPort('ProxyCommand', port) : 22, user: user ?? opt('l'), privateKeyFile: expandPath(opt('i')), become: false }
}

const isOptionWithArg = (w: string): boolean => /^-[A-Za-z]+$/.test(w) && WITH_ARG.has(w[w.length - 1])

function strictness(v: string | undefined): SshTarget['strictHostKeyChecking'] {
  const s = v?.toLowerCase()
  if (s === 'yes' || s === 'accept-new') return s
  if (s === 'no' || s === 'off') return 'no'
  return undefined // unset or 'ask': the caller's default
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

// ansible.cfg, found and read as Ansible finds and reads it, for the settings that
// decide how hosts are reached: `ansible-config dump` is the reference.
//
// - One file is read, the first that exists of: $ANSIBLE_CONFIG (a file, or a directory
//   holding ansible.cfg), ./ansible.cfg (skipped when the directory is world-writable, as
//   Ansible does), ~/.ansible.cfg, /etc/ansible/ansible.cfg.
// - Python's configparser as Ansible configures it: `key = value` or `key: value`, keys
//   case-insensitive, `#`/`;` comment lines, `;` after whitespace starts an inline
//   comment, indented lines continue a value, a duplicate key or section is an error.
//   Values are read raw (no %-interpolation) and lose one pair of surrounding quotes.
// - An ANSIBLE_* environment variable beats the file, as in Ansible.
// - Relative paths in the file (inventory, private_key_file) are relative to its directory.
import { existsSync, readFileSync, statSync, accessSync, constants } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { InputError } from '../errors.ts'

/** A value and where it came from: `FILE:LINE`, or `env ANSIBLE_...`. */
export interface Setting<T> {
  value: T
  from: string
}

export interface AnsibleConfig {
  /** The file read, if any. */
  file?: string
  /** [defaults] inventory: one path or several, comma-separated. */
  inventory?: Setting<string[]>
  remoteUser?: Setting<string>
  privateKeyFile?: Setting<string>
  hostKeyChecking?: Setting<boolean>
  /** Seconds. */
  timeout?: Setting<number>
  forks?: Setting<number>
  become?: Setting<boolean>
  becomeUser?: Setting<string>
  sshArgs?: Setting<string>
}

export interface Environment {
  env: NodeJS.ProcessEnv
  cwd: string
  home: string
}

/** The file Ansible would read, or undefined. */
export function findAnsibleConfig({ env, cwd, home }: Environment): string | undefined {
  const candidates: string[] = []
  if (env.ANSIBLE_CONFIG !== undefined) {
    const p = resolve(cwd, expandHome(env.ANSIBLE_CONFIG, home))
    candidates.push(statSync(p, { throwIfNoEntry: false })?.isDirectory() ? join(p, 'ansible.cfg') : p)
  }
  // A world-writable directory's ansible.cfg could be anyone's: Ansible ignores it.
  const cwdMode = statSync(cwd, { throwIfNoEntry: false })?.mode ?? 0o002
  if (!(cwdMode & 0o002)) candidates.push(join(cwd, 'ansible.cfg'))
  candidates.push(join(home, '.ansible.cfg'), '/etc/ansible/ansible.cfg')
  return candidates.find((p) => existsSync(p) && readable(p))
}

// [section, key, setting]; for a setting listed twice, the later entry wins (as Ansible's
// plugin configs list their ini entries).
const ENTRIES: Array<[string, string, keyof Omit<AnsibleConfig, 'file'>]> = [
  ['defaults', 'inventory', 'inventory'],
  ['defaults', 'remote_user', 'remoteUser'],
  ['defaults', 'private_key_file', 'privateKeyFile'],
  ['defaults', 'host_key_checking', 'hostKeyChecking'],
  ['ssh_connection', 'host_key_checking', 'hostKeyChecking'],
  ['defaults', 'timeout', 'timeout'],
  ['ssh_connection', 'timeout', 'timeout'],
  ['defaults', 'forks', 'forks'],
  ['privilege_escalation', 'become', 'become'],
  ['privilege_escalation', 'become_user', 'becomeUser'],
  ['ssh_connection', 'ssh_args', 'sshArgs'],
]

const ENV: Array<[string, keyof Omit<AnsibleConfig, 'file'>]> = [
  ['ANSIBLE_INVENTORY', 'inventory'],
  ['ANSIBLE_REMOTE_USER', 'remoteUser'],
  ['ANSIBLE_PRIVATE_KEY_FILE', 'privateKeyFile'],
  ['ANSIBLE_HOST_KEY_CHECKING', 'hostKeyChecking'],
  ['ANSIBLE_SSH_HOST_KEY_CHECKING', 'hostKeyChecking'],
  ['ANSIBLE_TIMEOUT', 'timeout'],
  ['ANSIBLE_SSH_TIMEOUT', 'timeout'],
  ['ANSIBLE_FORKS', 'forks'],
  ['ANSIBLE_BECOME', 'become'],
  ['ANSIBLE_BECOME_USER', 'becomeUser'],
  ['ANSIBLE_SSH_ARGS', 'sshArgs'],
]

/** The connection settings of the ansible.cfg Ansible would read, and of ANSIBLE_* variables. */
export function loadAnsibleConfig(environment: Environment): AnsibleConfig {
  const file = findAnsibleConfig(environment)
  const out: AnsibleConfig = {}
  const raw = new Map<keyof Omit<AnsibleConfig, 'file'>, { text: string; from: string; base: string }>()
  if (file) {
    out.file = file
    if (!/\.(cfg|ini)$/.test(file)) throw new InputError('Ansible reads only .cfg and .ini config files', { where: file })
    const sections = parseConfigParser(readFileSync(file, 'utf8'), file)
    for (const [section, key, setting] of ENTRIES) {
      const v = sections.get(section)?.get(key)
      if (v) raw.set(setting, { text: v.value, from: `${file}:${v.line}`, base: dirname(file) })
    }
  }
  for (const [name, setting] of ENV) {
    const v = environment.env[name]
    if (v !== undefined) raw.set(setting, { text: v, from: `env ${name}`, base: environment.cwd })
  }
  for (const [setting, { text, from, base }] of raw) {
    const path = (p: string): string => resolve(base, expandHome(p, environment.home))
    const put = <K extends keyof Omit<AnsibleConfig, 'file'>>(k: K, value: NonNullable<AnsibleConfig[K]>['value']): void => {
      out[k] = { value, from } as AnsibleConfig[K]
    }
    if (setting === 'inventory') put(setting, text.split(',').map((p) => p.trim()).filter(Boolean).map(path))
    else if (setting === 'privateKeyFile') put(setting, path(text))
    else if (setting === 'hostKeyChecking' || setting === 'become') put(setting, boolean(text, from, setting))
    else if (setting === 'timeout' || setting === 'forks') put(setting, integer(text, from, setting))
    else put(setting, text)
  }
  return out
}

interface Value { value: string; line: number }

/** Python's configparser.ConfigParser(inline_comment_prefixes=(';',)), values raw. */
export function parseConfigParser(text: string, file: string): Map<string, Map<string, Value>> {
  const sections = new Map<string, Map<string, Value>>()
  let section: Map<string, Value> | undefined
  let last: Value | undefined
  let lastIndent = 0
  text.split(/\r?\n/).forEach((line, i) => {
    const where = `${file}:${i + 1}`
    const stripped = line.trim()
    if (stripped === '' || stripped.startsWith('#') || stripped.startsWith(';')) return
    const value = stripped.replace(/\s;.*$/, '').trimEnd()
    // A line indented deeper than its key continues that key's value.
    const indent = line.length - line.trimStart().length
    if (last && indent > lastIndent) {
      last.value += `\n${value}`
      return
    }
    const head = /^\[([^\]]+)\]/.exec(stripped)
    if (head) {
      if (sections.has(head[1])) throw new InputError(`section [${head[1]}] appears twice`, { where })
      section = new Map()
      sections.set(head[1], section)
      last = undefined
      return
    }
    if (!section) throw new InputError('a setting before the first [section]', { where, hint: 'Put it under [defaults] (or the section it belongs to).' })
    const m = /^([^=:]+?)\s*[=:]\s*(.*)$/.exec(value)
    if (!m) throw new InputError(`cannot read '${stripped}' (expected key = value)`, { where })
    const key = m[1].toLowerCase()
    if (section.has(key)) throw new InputError(`'${key}' appears twice in this section`, { where })
    last = { value: m[2], line: i + 1 }
    lastIndent = indent
    section.set(key, last)
  })
  for (const s of sections.values()) for (const v of s.values()) v.value = unquote(v.value.trim())
  return sections
}

const unquote = (v: string): string => (/^(['"]).*\1$/s.test(v) && v.length >= 2 ? v.slice(1, -1) : v)

const TRUE = new Set(['y', 'yes', 'on', '1', 'true', 't'])
const FALSE = new Set(['n', 'no', 'off', '0', 'false', 'f', ''])
function boolean(v: string, from: string, name: string): boolean {
  const s = v.trim().toLowerCase()
  if (TRUE.has(s)) return true
  if (FALSE.has(s)) return false
  throw new InputError(`${name} must be a boolean (true/false, yes/no), got '${v}'`, { where: from })
}

function integer(v: string, from: string, name: string): number {
  if (!/^\s*[0-9]+\s*$/.test(v) || Number(v) < 1) throw new InputError(`${name} must be a whole number, got '${v}'`, { where: from })
  return Number(v)
}

function expandHome(p: string, home: string): string {
  return p === '~' ? home : p.startsWith('~/') ? home + p.slice(1) : p
}

function readable(p: string): boolean {
  try {
    accessSync(p, constants.R_OK)
    return true
  } catch {
    return false
  }
}

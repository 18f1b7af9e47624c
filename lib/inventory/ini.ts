// INI inventories, read line by line as Ansible's ini plugin does
// (ansible/plugins/inventory/ini.py). Quirks kept on purpose, because operators' files
// rely on them:
// - Lines before the first section are hosts of `ungrouped`.
// - Host lines are split like a shell (shlex.ts): `#` ends the line even mid-word, and
//   inline values are Python literals when they parse (pyliteral.ts).
// - `[g:vars]` lines are NOT shell-split: `k = v # note` keeps ` # note` in a string
//   value, while `k = 1 # note` is 1 (a Python comment).
// - `;` starts a comment only as the first character of a line.
// - `[g:children]` and `[g:vars]` may name a group declared further down the same file.
// Where Ansible would only warn and carry on with an empty inventory, we stop with the
// file, the line and what was expected.

import { InputError } from '../errors.ts'
import { HostPatternError, expandHostPattern } from './hostpattern.ts'
import { Inventory, type Where, whereText } from './model.ts'
import { parsePythonLiteral } from './pyliteral.ts'
import { ShlexError, shlexSplit } from './shlex.ts'

const SECTION = /^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$/
const GROUP_NAME = /^([^:\]\s]+)\s*(?:#.*)?$/
// Python's str.splitlines() boundaries, so line numbers match Ansible's.
const LINE_BREAK = /\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]/

/** An inline value as Ansible types it: a Python literal if it is one, else the text. */
export function iniValue(text: string): unknown {
  const v = parsePythonLiteral(text)
  return v === undefined ? text : v
}

interface Pending {
  line: number
  state: 'vars' | 'children'
  /** For `children`: the groups waiting for this one, in order. */
  parents: string[]
}

/** Read one INI file into `inv` (which may already hold other files of a directory). */
export function parseIni(text: string, file: string, inv: Inventory): void {
  const fail = (line: number, message: string, hint?: string): never => {
    throw new InputError(message, { where: whereText({ file, line }), hint })
  }
  const pending = new Map<string, Pending>()
  let group = 'ungrouped'
  let state = 'hosts'
  const lines = text.replace(/^\ufeff/, '').split(LINE_BREAK)

  lines.forEach((raw, index) => {
    const lineNo = index + 1
    const where: Where = { file, line: lineNo }
    const line = raw.trim()
    if (!line || line[0] === '#' || line[0] === ';') return

    const section = SECTION.exec(line)
    if (section) {
      group = section[1]
      state = section[2] ?? 'hosts'
      if (!['hosts', 'children', 'vars'].includes(state)) {
        fail(lineNo, `section [${group}:${state}] has unknown type '${state}'`, 'Expected [group], [group:vars] or [group:children].')
      }
      if (!inv.groups.has(group)) {
        // [g:vars] alone does not declare g; it must be declared somewhere in this file.
        if (state === 'vars' && !pending.has(group)) pending.set(group, { line: lineNo, state: 'vars', parents: [] })
        inv.addGroup(group, where)
      }
      const waiting = pending.get(group)
      if (waiting && state !== 'vars') {
        if (waiting.state === 'children') addPendingChildren(inv, group, pending, where)
        else pending.delete(group)
      }
      return
    }
    if (line[0] === '[') {
      if (line.endsWith(']')) {
        fail(lineNo, `invalid section header '${line}'`, 'Expected [group], [group:vars] or [group:children], with no spaces inside the brackets.')
      }
      if (!line.includes(']')) fail(lineNo, `unclosed section header '${line}': expected ']'`, 'Write the section as [group], [group:vars] or [group:children].')
    }

    if (state === 'hosts') parseHostLine(line, where, group, inv, fail)
    else if (state === 'vars') {
      const eq = line.indexOf('=')
      if (eq < 0) fail(lineNo, `expected key=value in [${group}:vars], got '${line}'`)
      const key = line.slice(0, eq).trim()
      if (!key) fail(lineNo, `expected key=value in [${group}:vars], got an empty key in '${line}'`)
      inv.setGroupVar(group, key, iniValue(line.slice(eq + 1).trim()), where)
    } else {
      const m = GROUP_NAME.exec(line)
      if (!m) fail(lineNo, `expected a group name in [${group}:children], got '${line}'`)
      const child = m![1]
      if (inv.groups.has(child)) inv.addChild(group, child, where)
      else {
        const p = pending.get(child)
        if (p) p.parents.push(group)
        else pending.set(child, { line: lineNo, state: 'children', parents: [group] })
      }
    }
  })

  // Ansible reports the first unresolved reference only; so do we.
  for (const [name, p] of pending) {
    if (p.state === 'vars') {
      fail(p.line, `section [${name}:vars] is for group '${name}', which is not defined in this file`, `Add a [${name}] or [${name}:children] section, or fix the name.`)
    }
    fail(p.line, `section [${p.parents.at(-1)}:children] names group '${name}', which is not defined`, `Add a [${name}] section (it may be empty), or fix the name.`)
  }
}

function addPendingChildren(inv: Inventory, group: string, pending: Map<string, Pending>, where: Where): void {
  for (const parent of pending.get(group)!.parents) {
    inv.addChild(parent, group, where)
    if (pending.get(parent)?.state === 'children') addPendingChildren(inv, parent, pending, where)
  }
  pending.delete(group)
}

function parseHostLine(
  line: string,
  where: Where,
  group: string,
  inv: Inventory,
  fail: (line: number, message: string, hint?: string) => never,
): void {
  const lineNo = where.line!
  let tokens: string[]
  try {
    tokens = shlexSplit(line)
  } catch (e) {
    if (!(e instanceof ShlexError)) throw e
    return fail(lineNo, `cannot split host line '${line}': ${e.message}`, 'Check the quotes and backslashes on this line.')
  }
  if (tokens.length === 0) return // `"" ` or a line that is all comment after quotes
  const pattern = tokens[0]
  if (pattern.endsWith(':')) fail(lineNo, `host '${pattern}' ends in ':'`, 'Write host:PORT with a port number, or drop the colon.')
  if (pattern.trim() === '---') fail(lineNo, `'---' in an INI inventory`, 'This looks like a YAML file; name it *.yml or *.yaml.')
  if (/[;]/.test(pattern)) {
    fail(lineNo, `host '${pattern}' contains ';'`, "In INI inventories ';' starts a comment only at the start of a line; use '#' for a comment after a host.")
  }
  const vars: [string, unknown][] = []
  for (const t of tokens.slice(1)) {
    const eq = t.indexOf('=')
    if (eq < 0) {
      const hint = t.startsWith(';')
        ? "';' starts a comment only at the start of a line; use '#' for a comment after a host."
        : 'Host variables are written key=value; quote values that contain spaces.'
      fail(lineNo, `expected key=value after host '${pattern}', got '${t}'`, hint)
    }
    if (eq === 0) fail(lineNo, `expected key=value after host '${pattern}', got an empty key in '${t}'`)
    vars.push([t.slice(0, eq), iniValue(t.slice(eq + 1))])
  }
  let expanded: { hosts: string[]; port?: number }
  try {
    expanded = expandHostPattern(pattern)
  } catch (e) {
    if (!(e instanceof HostPatternError)) throw e
    return fail(lineNo, e.message)
  }
  for (const name of expanded.hosts) {
    inv.addHost(name, where, group, expanded.port)
    for (const [k, v] of vars) inv.setHostVar(name, k, v, where)
  }
}

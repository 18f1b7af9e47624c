// Reads YAML (and JSON) files into plain values the way Ansible's loader does, which is
// PyYAML with YAML 1.1 rules: `yes`/`on`/`off` are booleans but `y` is not, `0755` is
// octal, `1:30` is 90, `1e3` is a string (a float needs a dot and a signed exponent),
// dates are kept as their ISO text. eemeli/yaml parses (with line numbers for errors);
// we resolve every plain scalar ourselves, since its own 1.1 schema differs on those
// cases. Ansible's tags: `!unsafe` and `!vault` become marker objects that print as
// Ansible prints them ({"__ansible_unsafe": ...}, {"__ansible_vault": ...}).

import { type Document, isAlias, isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml'
import { InputError } from '../errors.ts'
import { newVars, whereText } from './model.ts'

/** A string Ansible must not template (`!unsafe`). */
export class Unsafe {
  constructor(readonly value: string) {}
  toJSON(): object { return { __ansible_unsafe: this.value } }
  toString(): string { return this.value }
}

/** An inline vault-encrypted value (`!vault`); etcd-rescue cannot decrypt it. */
export class Vault {
  constructor(readonly ciphertext: string) {}
  toJSON(): object { return { __ansible_vault: this.ciphertext } }
}

/** A parsed file: its value, and the line of each mapping key for later error messages. */
export interface Loaded {
  value: unknown
  /** Line of `key` in the mapping `map` (a value from this file), if known. */
  lineOf(map: object, key: string): number | undefined
}

const SEQ_TAGS = new Set(['tag:yaml.org,2002:seq', 'tag:yaml.org,2002:omap', 'tag:yaml.org,2002:pairs'])

/** Parse a YAML or JSON document. JSON is tried first, as Ansible's loader does. */
export function loadYamlOrJson(text: string, file: string, warnings: string[]): Loaded {
  try {
    const value = JSON.parse(text, (_k, v) => revive(v))
    return { value, lineOf: () => undefined }
  } catch {
    // not JSON: fall through to YAML
  }
  const lines = new LineCounter()
  const doc = parseDocument(text, { schema: 'failsafe', uniqueKeys: false, version: '1.1', lineCounter: lines, prettyErrors: false })
  const lineAt = (offset: number): number => lines.linePos(offset).line
  if (doc.errors.length > 0) {
    const e = doc.errors[0]
    throw new InputError(`not valid YAML: ${e.message.split('\n')[0]}`, { where: whereText({ file, line: lineAt(e.pos[0]) }) })
  }
  const keyLines = new WeakMap<object, Map<string, number>>()
  const fail = (node: Node, message: string): never => {
    throw new InputError(message, { where: whereText({ file, line: node.range ? lineAt(node.range[0]) : undefined }) })
  }

  const convert = (node: Node | null, unsafe = false): unknown => {
    if (node === null) return null
    if (isAlias(node)) return convert(node.resolve(doc as Document) as Node, unsafe)
    const tag = node.tag
    if (tag === '!unsafe') unsafe = true
    else if (tag === '!vault') {
      if (!isScalar(node)) return fail(node, '!vault must tag a string')
      return new Vault(String(node.value))
    } else if (tag && !isCoreTag(tag)) return fail(node, `unsupported YAML tag ${tag}`)
    if (isScalar(node)) {
      const text = String(node.value ?? '')
      const value = tag && tag !== '!unsafe' ? resolveTagged(tag, text) : node.type === 'PLAIN' && !tag ? resolvePlain(text) : text
      if (value === INVALID) return fail(node, `'${text}' is not a valid ${tag}`)
      return unsafe && typeof value === 'string' ? new Unsafe(value) : value
    }
    if (isSeq(node)) return node.items.map((item) => convert(item as Node, unsafe))
    if (isMap(node)) {
      if (tag === 'tag:yaml.org,2002:set') return node.items.map((p) => convert(p.key as Node, unsafe))
      if (SEQ_TAGS.has(tag ?? '')) return fail(node, `${tag} must be a sequence`)
      const out: Record<string, unknown> = newVars()
      const lineMap = new Map<string, number>()
      keyLines.set(out, lineMap)
      // PyYAML merge keys: merged entries first (earlier sources win), explicit keys last.
      const explicit: [Node, unknown][] = []
      const merged: [string, unknown][] = []
      for (const pair of node.items) {
        const keyNode = pair.key as Node
        if (isScalar(keyNode) && keyNode.type === 'PLAIN' && !keyNode.tag && keyNode.value === '<<') {
          const sources = isSeq(pair.value) ? pair.value.items : [pair.value]
          for (const src of [...sources].reverse()) {
            const m = convert(src as Node, unsafe)
            if (typeof m !== 'object' || m === null || Array.isArray(m)) return fail(keyNode, 'a merge key (<<) must name a mapping or a list of mappings')
            merged.push(...Object.entries(m))
          }
        } else explicit.push([keyNode, convert(pair.value as Node, unsafe)])
      }
      for (const [k, v] of merged) out[k] = v
      for (const [keyNode, v] of explicit) {
        const key = jsonKey(convert(keyNode, false))
        if (key === undefined) return fail(keyNode, 'a mapping key must be a string, number, boolean or null')
        if (lineMap.has(key)) {
          warnings.push(`${whereText({ file, line: lineAt(keyNode.range![0]) })}: duplicate key '${key}'; the last value wins (as in Ansible)`)
        }
        out[key] = v
        if (keyNode.range) lineMap.set(key, lineAt(keyNode.range[0]))
      }
      return out
    }
    return fail(node, 'unexpected YAML node')
  }

  const value = convert(doc.contents as Node | null)
  return { value, lineOf: (map, key) => keyLines.get(map)?.get(key) }
}

function revive(v: unknown): unknown {
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    const keys = Object.keys(v)
    const o = v as Record<string, unknown>
    if (keys.length === 1 && keys[0] === '__ansible_unsafe' && typeof o.__ansible_unsafe === 'string') return new Unsafe(o.__ansible_unsafe)
    if (keys.length === 1 && keys[0] === '__ansible_vault' && typeof o.__ansible_vault === 'string') return new Vault(o.__ansible_vault)
    return Object.assign(newVars(), v)
  }
  return v
}

// Python's json module writes dict keys True/None/1 as "true"/"null"/"1".
function jsonKey(k: unknown): string | undefined {
  if (typeof k === 'string') return k
  if (k instanceof Unsafe) return k.value
  if (typeof k === 'number' || typeof k === 'boolean' || k === null) return String(k)
  return undefined
}

const CORE = 'tag:yaml.org,2002:'
const isCoreTag = (tag: string): boolean =>
  tag.startsWith(CORE) && ['str', 'int', 'float', 'bool', 'null', 'timestamp', 'map', 'seq', 'set', 'omap', 'pairs'].includes(tag.slice(CORE.length))

const INVALID = Symbol('invalid scalar')

// PyYAML's implicit resolvers (yaml/resolver.py), for plain scalars with no tag.
const BOOL = /^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$/
const FLOAT = /^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/
const INT = /^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$/
const NULL = /^(?:~|null|Null|NULL|)$/
const TIMESTAMP = /^(?:[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)$/

function resolvePlain(text: string): unknown {
  if (BOOL.test(text)) return ['yes', 'true', 'on'].includes(text.toLowerCase())
  if (INT.test(text)) return toInt(text)
  if (FLOAT.test(text)) return toFloat(text)
  if (NULL.test(text)) return null
  if (TIMESTAMP.test(text)) return toTimestamp(text)
  return text
}

function resolveTagged(tag: string, text: string): unknown {
  switch (tag.slice(CORE.length)) {
    case 'str': return text
    case 'null': return null
    case 'bool': return BOOL.test(text) ? ['yes', 'true', 'on'].includes(text.toLowerCase()) : INVALID
    case 'int': return /^[-+]?[0-9a-fA-Fxob_:]+$/.test(text) ? toInt(text) : INVALID
    case 'float': return toFloat(text)
    case 'timestamp': return TIMESTAMP.test(text) ? toTimestamp(text) : INVALID
    default: return INVALID
  }
}

// PyYAML's construct_yaml_int.
function toInt(text: string): number | typeof INVALID {
  let v = text.replaceAll('_', '')
  let sign = 1
  if (v[0] === '-' || v[0] === '+') { if (v[0] === '-') sign = -1; v = v.slice(1) }
  let n: number
  if (v === '0') n = 0
  else if (v.startsWith('0b')) n = parseInt(v.slice(2), 2)
  else if (v.startsWith('0x')) n = parseInt(v.slice(2), 16)
  else if (v[0] === '0') n = parseInt(v, 8)
  else if (v.includes(':')) n = v.split(':').reduce((acc, d) => acc * 60 + parseInt(d, 10), 0)
  else n = Number(v)
  return Number.isNaN(n) ? INVALID : sign * n
}

// PyYAML's construct_yaml_float.
function toFloat(text: string): number | typeof INVALID {
  let v = text.replaceAll('_', '').toLowerCase()
  let sign = 1
  if (v[0] === '-' || v[0] === '+') { if (v[0] === '-') sign = -1; v = v.slice(1) }
  if (v === '.inf') return sign * Infinity
  if (v === '.nan') return NaN
  const n = v.includes(':') ? v.split(':').reduce((acc, d) => acc * 60 + Number(d), 0) : Number(v)
  return Number.isNaN(n) ? INVALID : sign * n
}

// PyYAML makes a date or datetime; Ansible prints its isoformat(), so we keep that text.
function toTimestamp(text: string): string {
  const m = /^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})(?:(?:[Tt]|[ \t]+)([0-9]{1,2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]*))?(?:[ \t]*(Z|([-+])([0-9]{1,2})(?::([0-9]{2}))?))?)?$/.exec(text)!
  const p2 = (s: string | number): string => String(s).padStart(2, '0')
  const date = `${m[1]}-${p2(m[2])}-${p2(m[3])}`
  if (m[4] === undefined) return date
  const fraction = m[7] ? `.${m[7].slice(0, 6).padEnd(6, '0')}` : ''
  let tz = ''
  if (m[8] === 'Z' || (m[9] && Number(m[10]) === 0 && Number(m[11] ?? 0) === 0)) tz = '+00:00'
  else if (m[9]) tz = `${m[9]}${p2(Number(m[10]))}:${p2(Number(m[11] ?? 0))}`
  // Python omits a zero fraction (".000000") from isoformat().
  return `${date}T${p2(m[4])}:${m[5]}:${m[6]}${fraction === '.000000' ? '' : fraction}${tz}`
}

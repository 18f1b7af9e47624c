// Python's `ast.literal_eval`, as far as Ansible's INI plugin needs it: every inline value
// (`x=3`, `[g:vars]` lines) is tried as a Python literal and kept as a string if it is not
// one. So `3` is a number, `False` a boolean, `None` null, `[1, 2]` a list, but `true`,
// `yes` and `007` stay strings. Python comments are part of the grammar, so `1 # note`
// is 1. What JSON cannot hold becomes the nearest thing: tuples and sets are arrays.
// Complex numbers, f-strings and `\N{...}` escapes are not literals here: the value stays
// a string (Ansible itself fails to print complex numbers).

type Token =
  | { kind: 'num'; value: number }
  | { kind: 'str'; value: string; bytes: boolean }
  | { kind: 'name'; value: string }
  | { kind: 'op'; value: string }

const NOT_LITERAL = Symbol('not a literal')

/** The value of `text` as a Python literal, or `undefined` when it is not one. */
export function parsePythonLiteral(text: string): unknown {
  let tokens: Token[]
  try {
    tokens = tokenize(text)
  } catch (e) {
    if (e === NOT_LITERAL) return undefined
    throw e
  }
  let pos = 0
  const peek = (): Token | undefined => tokens[pos]
  const isOp = (v: string): boolean => peek()?.kind === 'op' && peek()!.value === v
  const fail = (): never => { throw NOT_LITERAL }
  const expect = (v: string): void => { if (!isOp(v)) fail(); pos++ }

  // A comma-separated run up to `close`; returns the items and whether a comma was seen.
  function items(close: string, item: () => unknown): [unknown[], boolean] {
    const out: unknown[] = []
    let comma = false
    while (!isOp(close)) {
      out.push(item())
      if (!isOp(',')) break
      pos++
      comma = true
    }
    expect(close)
    return [out, comma]
  }

  function atom(): unknown {
    const t = peek()
    if (!t) return fail()
    pos++
    if (t.kind === 'num') return t.value
    if (t.kind === 'str') {
      // Adjacent string literals concatenate, as in Python; str and bytes do not mix.
      let s = t.value
      while (peek()?.kind === 'str') {
        const u = tokens[pos++] as Extract<Token, { kind: 'str' }>
        if (u.bytes !== t.bytes) fail()
        s += u.value
      }
      return s
    }
    if (t.kind === 'name') {
      if (t.value === 'True') return true
      if (t.value === 'False') return false
      if (t.value === 'None') return null
      return fail()
    }
    if (t.value === '-' || t.value === '+') {
      // One sign on a number literal only: literal_eval rejects `--1` and `-'a'`, but
      // parentheses make no node in Python's tree, so `-(1)` is -1.
      let parens = 0
      while (isOp('(')) { pos++; parens++ }
      const n = peek()
      if (n?.kind !== 'num') return fail()
      pos++
      while (parens-- > 0) expect(')')
      return t.value === '-' ? -n.value : n.value
    }
    if (t.value === '[') return items(']', expr)[0]
    if (t.value === '(') {
      if (isOp(')')) { pos++; return [] }
      const first = expr()
      if (isOp(')')) { pos++; return first }
      expect(',')
      return [first, ...items(')', expr)[0]]
    }
    if (t.value === '{') return braces()
    return fail()
  }

  // `{}` and `{k: v}` are dicts, `{a, b}` a set.
  function braces(): unknown {
    if (isOp('}')) { pos++; return Object.create(null) }
    const first = expr()
    if (!isOp(':')) {
      if (isOp('}')) { pos++; return [first] }
      expect(',')
      return [first, ...items('}', expr)[0]]
    }
    const dict: Record<string, unknown> = Object.create(null)
    pos++
    dict[jsonKey(first)] = expr()
    while (isOp(',')) {
      pos++
      if (isOp('}')) break
      const k = expr()
      expect(':')
      dict[jsonKey(k)] = expr()
    }
    expect('}')
    return dict
  }

  const expr = atom

  try {
    // At the top level `1, 2` is a tuple, as in Python.
    const first = expr()
    if (pos === tokens.length) return first
    expect(',')
    const rest: unknown[] = [first]
    while (pos < tokens.length) {
      rest.push(expr())
      if (pos < tokens.length) expect(',')
    }
    return rest
  } catch (e) {
    if (e === NOT_LITERAL) return undefined
    throw e
  }
}

// Python's json module writes dict keys True/None/1.5 as "true"/"null"/"1.5"; lists and
// dicts are not hashable, so they cannot be keys at all.
function jsonKey(k: unknown): string {
  if (typeof k === 'string') return k
  if (typeof k === 'number') return String(k)
  if (k === true || k === false || k === null) return String(k)
  throw NOT_LITERAL
}

const DIGITS = '[0-9](?:_?[0-9])*'
const NUMBER = new RegExp(
  '^(?:' +
    `0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+` +
    `|(?:${DIGITS})?\\.${DIGITS}(?:[eE][-+]?${DIGITS})?` +
    `|${DIGITS}\\.(?:${DIGITS})?(?:[eE][-+]?${DIGITS})?` +
    `|${DIGITS}[eE][-+]?${DIGITS}` +
    `|[1-9](?:_?[0-9])*|0+(?:_?0)*` +
    ')',
)
const NAME = /^[\p{L}_][\p{L}\p{N}_]*/u
const STRING_START = /^([rRbBuUfF]{0,2})('''|"""|'|")/
const PREFIXES = new Set(['', 'r', 'u', 'b', 'br', 'rb'])

function tokenize(src: string): Token[] {
  const out: Token[] = []
  let i = 0
  while (i < src.length) {
    const rest = src.slice(i)
    const c = src[i]
    if (c === ' ' || c === '\t' || c === '\f') { i++; continue }
    if (c === '#') break
    const str = STRING_START.exec(rest)
    if (str) {
      const [value, length, bytes] = readString(rest, str[1].toLowerCase(), str[2])
      out.push({ kind: 'str', value, bytes })
      i += length
      continue
    }
    const num = NUMBER.exec(rest)
    if (num && /[0-9.]/.test(c)) {
      const after = rest[num[0].length] ?? ''
      // `007`, `1abc`, `1j` (complex) and `1.2.3` are not number literals here.
      if (/[\p{L}\p{N}_.]/u.test(after)) throw NOT_LITERAL
      const n = num[0].replaceAll('_', '')
      out.push({ kind: 'num', value: parseNumber(n) })
      i += num[0].length
      continue
    }
    const name = NAME.exec(rest)
    if (name) { out.push({ kind: 'name', value: name[0] }); i += name[0].length; continue }
    if ('[](){},:+-'.includes(c)) { out.push({ kind: 'op', value: c }); i++; continue }
    throw NOT_LITERAL
  }
  return out
}

function parseNumber(n: string): number {
  const prefix = n.slice(0, 2).toLowerCase()
  if (prefix === '0x') return parseInt(n.slice(2), 16)
  if (prefix === '0o') return parseInt(n.slice(2), 8)
  if (prefix === '0b') return parseInt(n.slice(2), 2)
  return Number(n)
}

const SIMPLE_ESCAPES: Record<string, string> = {
  '\n': '', '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v',
}

// Returns [value, characters consumed, is bytes].
function readString(src: string, prefix: string, quote: string): [string, number, boolean] {
  if (!PREFIXES.has(prefix)) throw NOT_LITERAL
  const raw = prefix.includes('r')
  const bytes = prefix.includes('b')
  let i = prefix.length + quote.length
  let value = ''
  for (;;) {
    if (i >= src.length) throw NOT_LITERAL
    if (src.startsWith(quote, i)) break
    const c = src[i]
    if (c === '\n' && quote.length === 1) throw NOT_LITERAL
    if (bytes && c.charCodeAt(0) > 0x7f) throw NOT_LITERAL
    if (c !== '\\') { value += c; i++; continue }
    const e = src[i + 1]
    if (e === undefined) throw NOT_LITERAL
    if (raw) { value += c + e; i += 2; continue } // a raw string keeps the backslash
    const hex = (len: number): void => {
      const digits = src.slice(i + 2, i + 2 + len)
      if (!new RegExp(`^[0-9a-fA-F]{${len}}$`).test(digits)) throw NOT_LITERAL
      value += String.fromCodePoint(parseInt(digits, 16))
      i += 2 + len
    }
    if (e in SIMPLE_ESCAPES) { value += SIMPLE_ESCAPES[e]; i += 2 }
    else if (e === 'x') hex(2)
    else if (e === 'u' && !bytes) hex(4)
    else if (e === 'U' && !bytes) hex(8)
    else if (/[0-7]/.test(e)) {
      const oct = /^[0-7]{1,3}/.exec(src.slice(i + 1))![0]
      value += String.fromCharCode(parseInt(oct, 8))
      i += 1 + oct.length
    } else if (e === 'N' && !bytes) throw NOT_LITERAL
    else { value += c + e; i += 2 } // unknown escapes keep their backslash
  }
  // Ansible turns bytes into text (UTF-8), so b'\xc3\xa9' is 'é'.
  if (bytes) value = Buffer.from(value, 'latin1').toString('utf8')
  return [value, i + quote.length, bytes]
}

// Host patterns as Ansible reads them (ansible/parsing/utils/addresses.py and
// expand_hostname_range in plugins/inventory/__init__.py): an optional `:port`, then
// ranges `[01:03]`, `[a:c]`, `[1:9:2]` expanded left to right.
//
// Ansible only splits off a port when what is left is a valid IPv4/IPv6 address or host
// name (ranges allowed); otherwise the whole text, colon and all, is the host name. We
// keep that rule, so `weird$h:22` stays one (odd) host just as in Ansible.

/** Why a pattern could not be expanded; the caller adds file and line. */
export class HostPatternError extends Error {}

const NUMERIC_RANGE = String.raw`\[(?:[0-9]+:[0-9]+)(?::[0-9]+)?\]`
const HEX_RANGE = String.raw`\[(?:[0-9a-f]+:[0-9a-f]+)(?::[0-9]+)?\]`
const ALNUM_RANGE = String.raw`\[(?:[a-z]:[a-z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]`
const V6 = `(?:[0-9a-f]{1,4}|${HEX_RANGE})`
const V4 = `(?:[01]?[0-9]{1,2}|2[0-4][0-9]|25[0-5]|${NUMERIC_RANGE})`
// Python's \w in a str pattern is Unicode-aware.
const LABEL = String.raw`(?:[\p{L}\p{N}_]|${ALNUM_RANGE})(?:[\p{L}\p{N}_-]|${ALNUM_RANGE})*(?<![_-])`

const BRACKETED_HOSTPORT = /^\[(.+)\]:([0-9]+)$/
const HOSTPORT = /^((?:[^:[\]]|\[[^\]]*\])*):([0-9]+)$/
const IPV4 = new RegExp(`^(?:${V4}\\.){3}${V4}$`, 'i')
// Like Ansible's, `^` binds to the first alternative and `$` to the last only; with
// re.match every alternative is anchored at the start, so this matches prefixes too.
const IPV6 = new RegExp(
  '^(?:' +
    [
      `(?:${V6}:){7}${V6}`,
      `(?:${V6}:){1,6}:`,
      `(?:${V6}:)(?::${V6}){1,6}`,
      `(?:${V6}:){2}(?::${V6}){1,5}`,
      `(?:${V6}:){3}(?::${V6}){1,4}`,
      `(?:${V6}:){4}(?::${V6}){1,3}`,
      `(?:${V6}:){5}(?::${V6}){1,2}`,
      `(?:${V6}:){6}(?::${V6})`,
      `:(?::${V6}){1,6}`,
      `${V6}?::`,
      `(?:0:){6}(?:${V6}\\.){3}${V6}`,
      `::(?:ffff:)?(?:${V6}\\.){3}${V6}`,
      `(?:0:){5}ffff:(?:${V6}\\.){3}${V6}$`,
    ].join('|') +
    ')',
  'i',
)
const HOSTNAME = new RegExp(`^${LABEL}(?:\\.${LABEL})*$`, 'iu')

/** Ansible's parse_address(allow_ranges=True): host and port, or undefined if not an address. */
export function parseAddress(text: string): { host: string; port?: number } | undefined {
  let address = text
  let port: number | undefined
  for (const re of [BRACKETED_HOSTPORT, HOSTPORT]) {
    const m = re.exec(address)
    if (m) {
      address = m[1]
      port = Number(m[2])
    }
  }
  if (IPV4.test(address) || IPV6.test(address) || HOSTNAME.test(address)) return { host: address, port }
  return undefined
}

/** Host names and port of one inventory host pattern, e.g. `node[01:03]:2222`. */
export function expandHostPattern(pattern: string): { hosts: string[]; port?: number } {
  const parsed = parseAddress(pattern)
  const base = parsed?.host ?? pattern
  const hosts = base.includes('[') ? expandRanges(base) : [base]
  return { hosts, port: parsed?.port }
}

const LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'

function expandRanges(name: string): string[] {
  const open = name.indexOf('[')
  const close = name.indexOf(']')
  if (open < 0) return [name]
  if (close < open) throw new HostPatternError(`unclosed range in host pattern '${name}': expected [begin:end] or [begin:end:step]`)
  const [head, spec, tail] = [name.slice(0, open), name.slice(open + 1, close), name.slice(close + 1)]
  const bounds = spec.split(':')
  if (bounds.length !== 2 && bounds.length !== 3) throw new HostPatternError(`host range [${spec}] must be begin:end or begin:end:step`)
  const beg = bounds[0] || '0'
  const end = bounds[1]
  const step = bounds.length === 3 ? parseInteger(bounds[2], spec) : 1
  if (!end) throw new HostPatternError(`host range [${spec}] must specify an end value`)
  if (step <= 0) throw new HostPatternError(`host range [${spec}] must have a positive step`)
  // A leading zero asks for zero-padding to the width of `begin`; `end` must be as wide.
  let width = 0
  if (beg[0] === '0' && beg.length > 1) {
    if (beg.length !== end.length) throw new HostPatternError(`host range [${spec}] must have equal-length begin and end`)
    width = beg.length
  }
  const items: string[] = []
  // Like Python's str.index, begin and end are looked up as substrings of a-zA-Z, so
  // [a:C] runs a..z then A..C.
  const iBeg = LETTERS.indexOf(beg)
  const iEnd = LETTERS.indexOf(end)
  if (iBeg >= 0 && iEnd >= 0) {
    if (iBeg > iEnd) throw new HostPatternError(`host range [${spec}] must have begin <= end`)
    for (let i = iBeg; i <= iEnd; i += step) items.push(LETTERS[i])
  } else {
    const [from, to] = [parseInteger(beg, spec), parseInteger(end, spec)]
    for (let i = from; i <= to; i += step) items.push(String(i))
  }
  // Ansible silently yields no host for [3:1]; an inventory line that names nobody is a
  // mistake worth stopping on.
  if (items.length === 0) throw new HostPatternError(`host range [${spec}] is empty: begin is after end`)
  return items.flatMap((item) => expandRanges(head + item.padStart(width, '0') + tail))
}

function parseInteger(text: string, spec: string): number {
  // Python's int() also takes surrounding blanks, a sign and digit underscores.
  const t = text.trim()
  if (!/^[-+]?[0-9](?:_?[0-9])*$/.test(t)) throw new HostPatternError(`host range [${spec}] has a bound that is not a number or a letter: '${text}'`)
  return Number(t.replaceAll('_', ''))
}

// What remote scripts print back: `key=value` lines, read by the caller's own grammar.

/**
 * The `PREFIX key=value` lines of a script's output, by key (the prefix cut off),
 * values trimmed; the last line for a key wins, other lines are ignored.
 */
export function prefixedFields(output: string, prefix = ''): Map<string, string> {
  const kv = new Map<string, string>()
  for (const line of output.split('\n')) {
    if (!line.startsWith(prefix)) continue
    const i = line.indexOf('=')
    if (i > prefix.length) kv.set(line.slice(prefix.length, i), line.slice(i + 1).trim())
  }
  return kv
}

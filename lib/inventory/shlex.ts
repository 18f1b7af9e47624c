// Python's `shlex.split(line, comments=True)` (posix mode), which Ansible's INI plugin uses
// to split a host line. Ported state by state from CPython's shlex.read_token because the
// quirks are the contract: `#` starts a comment even inside a word (`a#b` is `a`), quotes
// may sit mid-word (`x="a b"` is one token `x=a b`), a backslash inside double quotes
// escapes only `"` and `\`, and inside single quotes nothing at all.

const WHITESPACE = ' \t\r\n'
const QUOTES = `'"`

/** Why a line could not be split; the message is Python's own. */
export class ShlexError extends Error {}

/**
 * Split like Python's shlex.split (posix). `comments` (default true, as Ansible's INI
 * plugin asks) makes `#` end the line; Ansible splits ssh args with comments off.
 */
export function shlexSplit(line: string, { comments = true } = {}): string[] {
  const tokens: string[] = []
  let i = 0
  const next = (): string => (i < line.length ? line[i++] : '')

  for (;;) {
    let state = ' ' // ' ' between tokens, 'a' in a word, a quote char, or '\\'
    let escapedState = 'a'
    let token = ''
    let quoted = false
    let done = false // end of input (or of the line, after a comment)
    for (;;) {
      const c = next()
      if (state === ' ') {
        if (c === '') { done = true; break }
        if (WHITESPACE.includes(c)) { if (token || quoted) break; continue }
        if (c === '#' && comments) { i = line.length; continue }
        if (c === '\\') { escapedState = 'a'; state = c; continue }
        if (QUOTES.includes(c)) { state = c; continue }
        token = c
        state = 'a'
      } else if (QUOTES.includes(state)) {
        quoted = true
        if (c === '') throw new ShlexError('No closing quotation')
        if (c === state) state = 'a'
        else if (c === '\\' && state === '"') { escapedState = state; state = c }
        else token += c
      } else if (state === '\\') {
        if (c === '') throw new ShlexError('No escaped character')
        // In double quotes a backslash before anything but `"` or `\` stays literal.
        if (QUOTES.includes(escapedState) && c !== state && c !== escapedState) token += state
        token += c
        state = escapedState
      } else {
        // state 'a': inside a word
        if (c === '') { done = true; break }
        if (WHITESPACE.includes(c)) break
        if (c === '#' && comments) { i = line.length; break }
        if (QUOTES.includes(c)) state = c
        else if (c === '\\') { escapedState = 'a'; state = c }
        else token += c
      }
    }
    // An empty unquoted token means the end; an empty quoted one ("") is a real token.
    if (token !== '' || quoted) tokens.push(token)
    if (done) return tokens
  }
}

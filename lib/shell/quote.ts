// POSIX shell quoting. Every remote command in etcd-rescue is built from an argv
// array through `shellCommand`, because the remote login shell may be dash, not bash:
// zx's quote() emits bash-only $'...' and must not be used for remote commands.

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/

/** Quote one argument so any POSIX sh reads it back byte for byte. */
export function quote(arg: string | number): string {
  const s = String(arg)
  if (s.includes('\0')) throw new TypeError('a shell argument cannot contain a NUL byte')
  if (s !== '' && SAFE.test(s)) return s
  // Inside single quotes nothing is special but the quote itself: close, add \', reopen.
  return `'${s.replaceAll("'", `'\\''`)}'`
}

/** Build one shell command line from argv: `shellCommand(['rm', '-f', f])`. */
export function shellCommand(argv: ReadonlyArray<string | number>): string {
  if (argv.length === 0) throw new TypeError('empty command')
  return argv.map(quote).join(' ')
}

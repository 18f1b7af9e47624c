// A TLS file checked on a member host: there, readable with the run's
// privileges, and (where openssl is, for a certificate) not expired by the
// host's own clock, the one etcd and its peers judge it by. An expired member
// or peer certificate is a common cause of the quorum loss itself; restoring
// onto it would end in members that cannot talk to each other, so preflight
// refuses it before anything changes.
import { sh, type Script } from '../shell/sh.ts'

/** What tls_check found, by file: missing, unreadable, or expired (with its notAfter, as openssl prints it). */
export interface TlsFileState {
  missing: string[]
  unreadable: string[]
  expired: Array<{ file: string; notAfter: string }>
}

/**
 * `tls_check PREFIX FILE`: prints PREFIXmissing=FILE, PREFIXunreadable=FILE or
 * PREFIXexpired=NOTAFTER FILE; nothing for a file that is fine, a key, a
 * bundle of several certificates, or anything openssl does not read as a
 * certificate (or with no openssl).
 */
export const TLS_CHECK: Script = sh`tls_seen=
tls_check() {
  # Once per prefix and file: a unit names its CA and certificate for clients and peers alike.
  case "$tls_seen" in *"|$1$2|"*) return 0 ;; esac
  tls_seen="$tls_seen|$1$2|"
  if [ ! -e "$2" ]; then printf '%smissing=%s\\n' "$1" "$2"
  elif ! head -c 1 "$2" >/dev/null 2>&1; then printf '%sunreadable=%s\\n' "$1" "$2"
  elif command -v openssl >/dev/null 2>&1; then
    # A key is no certificate: no openssl started for it (a builtin read of its first line).
    tls_first=
    read -r tls_first 2>/dev/null < "$2"
    case $tls_first in *'PRIVATE KEY'*) return 0 ;; esac
    e=$(openssl x509 -noout -enddate -checkend 0 -in "$2" 2>/dev/null)
    # openssl reads a file's first certificate only: a CA bundle (several) is not judged by it.
    case $e in notAfter=*'will expire') [ "$(grep -c 'BEGIN CERTIFICATE' "$2")" -gt 1 ] || printf '%sexpired=%s %s\\n' "$1" "$(printf '%s\\n' "$e" | sed -n 's/^notAfter=//p')" "$2" ;; esac
  fi
}`

// openssl's notAfter: "Jan  1 00:00:00 2021 GMT".
const EXPIRED_RE = /^([A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d \d{4} GMT) (\/.*)$/

/** Collects tls_check's lines of one prefix (e.g. `tls.`). */
export function parseTlsLines(lines: readonly string[], prefix: string): TlsFileState {
  const out: TlsFileState = { missing: [], unreadable: [], expired: [] }
  for (const line of lines) {
    if (!line.startsWith(prefix)) continue
    const rest = line.slice(prefix.length)
    const i = rest.indexOf('=')
    const [kind, value] = [rest.slice(0, i), rest.slice(i + 1)]
    if (kind === 'missing') out.missing.push(value)
    else if (kind === 'unreadable') out.unreadable.push(value)
    else if (kind === 'expired') {
      const m = EXPIRED_RE.exec(value)
      if (m) out.expired.push({ notAfter: m[1].replace(/ +/g, ' '), file: m[2] })
    }
  }
  return out
}

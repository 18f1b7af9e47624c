// A TLS file checked on a member host: there, readable with the run's
// privileges, and, for a certificate, not expired by the host's own clock, the
// one etcd and its peers judge it by. An expired member or peer certificate is
// a common cause of the quorum loss itself; restoring onto it would end in
// members that cannot talk to each other, so preflight refuses it before
// anything changes. The host only reads the file's first certificate with the
// shell's own read (no process: openssl took about 48 ms of CPU per file, on
// hosts busy with the copy); this machine reads its expiry (node:crypto).
import { X509Certificate } from 'node:crypto'
import { sh, type Script } from '../shell/sh.ts'

/** What tls_check found, by file: missing, unreadable, or expired (with its notAfter, as openssl prints it). */
export interface TlsFileState {
  missing: string[]
  unreadable: string[]
  expired: Array<{ file: string; notAfter: string }>
}

/**
 * `tls_check PREFIX FILE`: prints PREFIXmissing=FILE or PREFIXunreadable=FILE;
 * else, when the file holds a certificate, PREFIXcert=FILE then its first
 * certificate's PEM lines as PREFIXpem=LINE, and PREFIXbundle=1 when a second
 * follows (a bundle is not judged by its first). Each file once per prefix.
 */
export const TLS_CHECK: Script = sh`tls_seen=
tls_cr=$(printf '\\r')
tls_check() {
  case "$tls_seen" in *"|$1$2|"*) return 0 ;; esac
  tls_seen="$tls_seen|$1$2|"
  if [ ! -e "$2" ]; then printf '%smissing=%s\\n' "$1" "$2"
  elif ! head -c 1 "$2" >/dev/null 2>&1; then printf '%sunreadable=%s\\n' "$1" "$2"
  else
    tls_n=0; tls_in=
    while IFS= read -r tls_l || [ -n "$tls_l" ]; do
      tls_l=\${tls_l%"$tls_cr"}
      case $tls_l in
        '-----BEGIN CERTIFICATE-----')
          tls_n=$((tls_n + 1))
          if [ "$tls_n" -gt 1 ]; then printf '%sbundle=1\\n' "$1"; break; fi
          printf '%scert=%s\\n' "$1" "$2"
          tls_in=1 ;;
      esac
      if [ -n "$tls_in" ]; then printf '%spem=%s\\n' "$1" "$tls_l"; fi
      case $tls_l in '-----END CERTIFICATE-----') tls_in= ;; esac
    done 2>/dev/null < "$2"
  fi
}`

/**
 * Collects tls_check's lines of one prefix (e.g. `tls.`); a certificate is
 * expired when its notAfter is before `hostNow` (the host's clock, seconds
 * since the epoch; without it, nothing is called expired).
 */
export function parseTlsLines(lines: readonly string[], prefix: string, hostNow?: number): TlsFileState {
  const out: TlsFileState = { missing: [], unreadable: [], expired: [] }
  const certs: Array<{ file: string; pem: string[]; bundle: boolean }> = []
  for (const line of lines) {
    if (!line.startsWith(prefix)) continue
    const rest = line.slice(prefix.length)
    const i = rest.indexOf('=')
    const [kind, value] = [rest.slice(0, i), rest.slice(i + 1)]
    const cert = certs[certs.length - 1]
    if (kind === 'missing') out.missing.push(value)
    else if (kind === 'unreadable') out.unreadable.push(value)
    else if (kind === 'cert') certs.push({ file: value, pem: [], bundle: false })
    else if (kind === 'pem' && cert) cert.pem.push(value)
    else if (kind === 'bundle' && cert) cert.bundle = true
  }
  if (hostNow === undefined) return out
  for (const c of certs) {
    if (c.bundle) continue
    let notAfter: string
    try {
      notAfter = new X509Certificate(`${c.pem.join('\n')}\n`).validTo
    } catch {
      continue // not a certificate this machine can read: not judged
    }
    if (Date.parse(notAfter) < hostNow * 1000) out.expired.push({ file: c.file, notAfter: notAfter.replace(/ +/g, ' ') })
  }
  return out
}

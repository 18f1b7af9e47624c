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

/**
 * What tls_check found, by file: missing, unreadable, or expired (with its
 * notAfter, as openssl prints it); `bundle` when the file holds more
 * certificates than the expired first one (a chain, or a CA bundle).
 */
export interface TlsFileState {
  missing: string[]
  unreadable: string[]
  /** Not a regular file: a directory, a FIFO or a device. */
  notFile: string[]
  expired: Array<{ file: string; notAfter: string; bundle?: true }>
}

/**
 * Whether an expired file stops a run in the role it is used in: a certificate
 * file is the member's own first certificate, chain or not; a CA file that holds
 * more than one certificate (a bundle during a CA rotation) is not judged by its
 * first.
 */
export function expiredInRole(e: TlsFileState['expired'][number], role: 'ca' | 'cert'): boolean {
  return role === 'cert' || !e.bundle
}

/**
 * `tls_check PREFIX FILE`: prints PREFIXmissing=FILE, PREFIXunreadable=FILE
 * (also for a file in a directory this run cannot enter) or PREFIXnotfile=FILE
 * (a directory, a FIFO, a device: etcd cannot use it as one); else, when the
 * file holds a certificate, PREFIXcert=FILE then its first certificate's PEM
 * lines as PREFIXpem=LINE, and PREFIXbundle=1 when a second follows or may
 * (the caller decides: a certificate file that holds its chain is judged by its
 * first, the member's own; a CA bundle is not). Each file once per prefix.
 * Only a regular file's first 64 KiB are read (a FIFO would block, a device
 * never end); one process (head) per file; IFS and globbing as the caller had them.
 */
export const TLS_CHECK: Script = sh`tls_seen=
tls_cr=$(printf '\\r')
tls_nl='
'
tls_check() {
  case "$tls_seen" in *"|$1$2|"*) return 0 ;; esac
  tls_seen="$tls_seen|$1$2|"
  if [ ! -e "$2" ]; then
    # Missing only where this run can look: in a directory it cannot enter, unreadable.
    tls_dir=\${2%/*}
    if [ -x "\${tls_dir:-/}" ]; then printf '%smissing=%s\\n' "$1" "$2"; else printf '%sunreadable=%s\\n' "$1" "$2"; fi
    return 0
  fi
  if [ ! -f "$2" ]; then printf '%snotfile=%s\\n' "$1" "$2"; return 0; fi
  # 2>/dev/null around it: bash warns of NUL bytes (a DER file) on stderr.
  if ! { tls_d=$(head -c 65537 -- "$2"); } 2>/dev/null; then printf '%sunreadable=%s\\n' "$1" "$2"; return 0; fi
  case $- in *f*) tls_glob= ;; *) tls_glob=1 ;; esac
  set -f
  tls_ifs=$IFS; tls_ifs_set=\${IFS+1}; IFS=$tls_nl
  tls_n=0; tls_in=
  for tls_l in $tls_d; do
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
  done
  # The file goes on past what was read: a second certificate may follow.
  if [ "$tls_n" -eq 1 ] && [ "\${#tls_d}" -gt 65536 ]; then printf '%sbundle=1\\n' "$1"; fi
  if [ -n "$tls_ifs_set" ]; then IFS=$tls_ifs; else unset IFS; fi
  [ -z "$tls_glob" ] || set +f
}`

/**
 * Collects tls_check's lines of one prefix (e.g. `tls.`); a certificate is
 * expired when its notAfter is before `hostNow` (the host's clock, seconds
 * since the epoch; without it, nothing is called expired).
 */
export function parseTlsLines(lines: readonly string[], prefix: string, hostNow?: number): TlsFileState {
  const out: TlsFileState = { missing: [], unreadable: [], notFile: [], expired: [] }
  const certs: Array<{ file: string; pem: string[]; bundle: boolean }> = []
  for (const line of lines) {
    if (!line.startsWith(prefix)) continue
    const rest = line.slice(prefix.length)
    const i = rest.indexOf('=')
    const [kind, value] = [rest.slice(0, i), rest.slice(i + 1)]
    const cert = certs[certs.length - 1]
    if (kind === 'missing') out.missing.push(value)
    else if (kind === 'unreadable') out.unreadable.push(value)
    else if (kind === 'notfile') out.notFile.push(value)
    else if (kind === 'cert') certs.push({ file: value, pem: [], bundle: false })
    else if (kind === 'pem' && cert) cert.pem.push(value)
    else if (kind === 'bundle' && cert) cert.bundle = true
  }
  if (hostNow === undefined) return out
  for (const c of certs) {
    let notAfter: string
    try {
      notAfter = new X509Certificate(`${c.pem.join('\n')}\n`).validTo
    } catch {
      continue // not a certificate this machine can read: not judged
    }
    if (Date.parse(notAfter) < hostNow * 1000) out.expired.push({ file: c.file, notAfter: notAfter.replace(/ +/g, ' '), ...(c.bundle ? { bundle: true as const } : {}) })
  }
  return out
}

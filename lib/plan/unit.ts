// "The unit is the truth": when a member runs under systemd, what etcd will do
// after the restore is decided by its unit (ExecStart flags, Environment=,
// EnvironmentFile=), not by the inventory. Preflight reads the unit and its
// environment files; if the name, data dir or peer URL etcd will run with
// disagree with the inventory, the restored data would be for a different
// member than the one that starts on it, so the run is refused before anything
// changes, with a diff of the two. The same read gives the user the unit runs
// as (owner of the restored data) and its Restart= policy.
import { sh, type Script } from '../shell/sh.ts'
import { parseTlsLines, type TlsFileState } from './tls-check.ts'

/** What the probe learned about the member's unit. */
export interface UnitConfig {
  /** User= ('' = root). */
  user: string
  /** Restart= (no, on-failure, always, ...). */
  restart: string
  /** ExecStart's argv, as systemctl shows it (variables not yet expanded). */
  execArgs: string[]
  /** Environment= and then each EnvironmentFile, later ones winning (as systemd applies them). */
  env: Record<string, string>
  /** Where each variable of env was set: 'Environment=' or the file's path. */
  envFrom: Record<string, string>
  envFiles: string[]
  /** EnvironmentFile= entries without `-` that are missing or unreadable: systemd refuses to start the unit. */
  envFilesMissing: string[]
  /** The binary ExecStart runs; missing: not there or not executable; version: its --version, when it is another etcd than preflight's. */
  exec: { path: string; missing: boolean; version?: string }
  /** The TLS files the unit names (any of them, see UnitMember.tlsFiles for those etcd takes) that are missing or expired. */
  tls: TlsFileState
  /** RefuseManualStart= / RefuseManualStop= (systemctl start or stop of it fails). */
  refuseManual: { start: boolean; stop: boolean }
  /** NeedDaemonReload=yes: the unit's files changed since systemd loaded them (what was read is not what would start). */
  needsReload: boolean
  /**
   * The unit as systemd had it loaded when preflight read it, as unitLoadedFn prints
   * it: what the hold compares after its own reload (unitArmScript).
   */
  loaded: string[]
}

/**
 * The properties that say which unit etcd would start and how: its files (new ones
 * included), ExecStart, environment and user. systemd 219 (RHEL 7) shows
 * EnvironmentFiles as EnvironmentFile=.
 */
const LOADED_PROPS = ['ExecStart', 'Environment', 'EnvironmentFiles', 'User', 'RefuseManualStart', 'FragmentPath', 'DropInPaths'] as const

/** `-p NAME` for each of LOADED_PROPS, for a `systemctl show` that reads them. */
export const loadedShowArgs = (): string[] => LOADED_PROPS.flatMap((p) => ['-p', p])

/**
 * Shell function `unit_loaded_of`: from `systemctl show` lines on stdin, those of
 * LOADED_PROPS, ExecStart's runtime fields (start time, pid, status) cut, the
 * hold's own drop-in left out, sorted. And `unit_loaded`, which reads them for "$U".
 *
 * Preflight prints them; the hold compares them again right after its own
 * daemon-reload. NeedDaemonReload does not cover every change on disk: systemd
 * never notices a new copy of the unit file in a directory that takes precedence
 * (systemd issue 4500; seen on the lab's systemd 252), and older systemd misses a
 * drop-in dir made after it loaded the unit (issue 31752; seen unflagged on a
 * fresh lab host, flagged after earlier reloads). Such a change is loaded by the
 * hold's reload, and the unit would start a member preflight never checked. What
 * is compared is the unit's file paths and these properties, not the files'
 * contents: an edit to a file systemd already loaded is what NeedDaemonReload
 * flags, and the arm checks that before its reload.
 */
export function unitLoadedFn(): Script {
  const pattern = `^(${LOADED_PROPS.join('|').replace('EnvironmentFiles', 'EnvironmentFiles?')})=`
  return sh`unit_loaded_of() {
  grep -E ${pattern} |
    sed -e 's/ ; start_time=[^}]*}/ }/g' -e '/^DropInPaths=/s|[^ =]*/zz-etcd-rescue-hold[.]conf||g' -e '/^DropInPaths=/s/   */ /g' -e '/^DropInPaths=/s/= /=/' -e '/^DropInPaths=/s/ $//' |
    LC_ALL=C sort
}
unit_loaded() { systemctl show ${loadedShowArgs()} -- "$U" 2>/dev/null | unit_loaded_of; }`
}

/**
 * The probe's part for a systemd member: `unit.*` lines, from one `systemctl
 * show` (older systemd, 219 of RHEL 7, has every property asked here). Runs
 * with "$U" set to the unit name, "$E" to the etcd preflight found (whose
 * version it checks) and tls_check defined (facts.ts); sets $unit_user to its
 * User=. The binary ExecStart runs, when it is another etcd, tells its version
 * too, and every TLS file the unit names is checked (there, readable, not expired).
 */
export function unitProbe(): Script {
  return sh`unit_user=
${unitLoadedFn()}
unit_ifs=$IFS
unit_cr=$(printf '\\r')
# A TLS file etcd is told to use (KEY=VALUE or -flag=VALUE), checked by tls_check. Every
# mention is checked; which one etcd takes (flags over variables) is decided by the reader.
unit_tls() {
  case $1 in
    ETCD_CERT_FILE=*|ETCD_KEY_FILE=*|ETCD_TRUSTED_CA_FILE=*|ETCD_PEER_CERT_FILE=*|ETCD_PEER_KEY_FILE=*|ETCD_PEER_TRUSTED_CA_FILE=*) ;;
    -cert-file=*|-key-file=*|-trusted-ca-file=*|-peer-cert-file=*|-peer-key-file=*|-peer-trusted-ca-file=*) ;;
    *) return 0 ;;
  esac
  t=\${1#*=}; t=\${t#\\"}; t=\${t%\\"}; t=\${t#\\'}; t=\${t%\\'}
  case $t in /*) tls_check unit.tls. "$t" ;; esac
}
# Words of an ExecStart line or of a variable's value (DAEMON_ARGS="--cert-file /x"), as flags.
unit_tls_words() {
  prev=
  for w in $1; do
    case $w in --*) w=\${w#-} ;; esac
    case $prev in -cert-file|-key-file|-trusted-ca-file|-peer-cert-file|-peer-key-file|-peer-trusted-ca-file) unit_tls "$prev=$w" ;; esac
    unit_tls "$w"
    prev=$w
  done
}
if command -v systemctl >/dev/null 2>&1; then
  unit_show=$(systemctl show -p LoadState -p UnitFileState -p ActiveState -p NeedDaemonReload -p Restart -p RefuseManualStop ${loadedShowArgs()} -- "$U" 2>/dev/null)
  # One line at a time without a here-doc (bash before 5.1 writes those to /tmp, which may be full).
  set -f
  IFS='
'
  for l in $unit_show; do
    IFS=$unit_ifs
    printf 'unit.show.%s\\n' "$l"
    case $l in
      User=*) unit_user=\${l#User=} ;;
      Environment=*)
        for w in \${l#Environment=}; do unit_tls "$w"; done ;;
      ExecStart=*'path='*)
        x=\${l#*path=}
        x=\${x%% ;*}
        printf 'unit.execpath=%s\\n' "$x"
        if [ ! -x "$x" ]; then echo "unit.execmissing=1"
        elif [ "$x" != "$E" ] && [ "\${x##*/}" = etcd ]; then printf 'unit.execversion=%s\\n' "$("$x" --version 2>&1 | head -n 1)"; fi
        a=\${l#*'argv[]='}
        unit_tls_words "\${a%% ;*}" ;;
      # systemd 219 (RHEL 7) names it EnvironmentFile=, later ones EnvironmentFiles=.
      EnvironmentFile=?*|EnvironmentFiles=?*)
        f=\${l#*=}
        f=\${f% (ignore_errors=*}
        printf 'unit.envfile=%s\\n' "$f"
        if [ -r "$f" ]; then
          while IFS= read -r el || [ -n "$el" ]; do
            el=\${el%"$unit_cr"}
            printf 'unit.envline=%s\\n' "$el"
            el=\${el#export }
            unit_tls "$el"
            case $el in *=*) v=\${el#*=}; v=\${v#\\"}; unit_tls_words "\${v%\\"}" ;; esac
          done < "$f"
        # Missing, not merely unreadable to this run (systemd reads it as root); a wildcard is
        # systemd's to expand.
        elif [ ! -e "$f" ]; then case $l in *'(ignore_errors=no)') case $f in *'*'*|*'?'*|*'['*) ;; *) printf 'unit.envmissing=%s\\n' "$f" ;; esac ;; esac; fi ;;
    esac
    IFS='
'
  done
  IFS=$unit_ifs
  set +f
  printf '%s\\n' "$unit_show" | unit_loaded_of | sed 's/^/unit.loaded=/'
fi`
}

/** How systemd has the unit loaded, from the probe's `unit.show.` lines; undefined if systemctl printed none. */
export function parseUnitState(lines: readonly string[]): { loadState: string; fileState: string; active: string } | undefined {
  const show = showMap(lines)
  const loadState = show.get('LoadState')
  if (loadState === undefined) return undefined
  return { loadState, fileState: show.get('UnitFileState') ?? '', active: show.get('ActiveState') ?? '' }
}

function showMap(lines: readonly string[]): Map<string, string> {
  const show = new Map<string, string>()
  for (const line of lines) {
    if (!line.startsWith('unit.show.')) continue
    const rest = line.slice('unit.show.'.length)
    const i = rest.indexOf('=')
    if (i > 0) show.set(rest.slice(0, i), rest.slice(i + 1))
  }
  return show
}

/** Collects the `unit.*` lines of the probe's output; undefined if the unit was not read or is not loaded. */
export function parseUnitLines(lines: readonly string[], hostNow?: number): UnitConfig | undefined {
  const show = showMap(lines)
  // A unit systemd did not load (not found, masked, broken) has no configuration to read.
  if (show.get('LoadState') !== 'loaded') return undefined
  const env: Record<string, string> = {}
  const envFrom: Record<string, string> = {}
  const listed = (key: string) => lines.filter((l) => l.startsWith(`${key}=`)).map((l) => l.slice(key.length + 1))
  const envFiles = listed('unit.envfile')
  // Environment= first (space-separated KEY=VALUE words), then the files override it.
  for (const word of splitWords(show.get('Environment') ?? '')) {
    const i = word.indexOf('=')
    if (i > 0) {
      env[word.slice(0, i)] = word.slice(i + 1)
      envFrom[word.slice(0, i)] = 'Environment='
    }
  }
  // Each file's lines follow its unit.envfile line.
  let file = ''
  for (const line of lines) {
    if (line.startsWith('unit.envfile=')) file = line.slice('unit.envfile='.length)
    if (!line.startsWith('unit.envline=')) continue
    const kv = parseEnvLine(line.slice('unit.envline='.length))
    if (kv) {
      env[kv[0]] = kv[1]
      envFrom[kv[0]] = file
    }
  }
  const exec = /argv\[\]=(.*?) ;/.exec(show.get('ExecStart') ?? '')?.[1] ?? ''
  return {
    user: show.get('User') ?? '', restart: show.get('Restart') ?? '', execArgs: splitWords(exec), env, envFrom, envFiles,
    envFilesMissing: listed('unit.envmissing'),
    tls: parseTlsLines(lines, 'unit.tls.', hostNow),
    exec: { path: listed('unit.execpath')[0] ?? '', missing: listed('unit.execmissing').length > 0, version: listed('unit.execversion')[0] },
    refuseManual: { start: show.get('RefuseManualStart') === 'yes', stop: show.get('RefuseManualStop') === 'yes' },
    needsReload: show.get('NeedDaemonReload') === 'yes',
    loaded: listed('unit.loaded'),
  }
}

/** One line of a systemd EnvironmentFile: KEY=VALUE, comments with # or ;, optional quotes. */
export function parseEnvLine(line: string): [string, string] | undefined {
  const t = line.trim()
  if (!t || t.startsWith('#') || t.startsWith(';')) return undefined
  const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(t)
  if (!m) return undefined
  let v = m[2]
  if (v.length >= 2 && ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'")))) v = v.slice(1, -1)
  return [m[1], v]
}

function splitWords(s: string): string[] {
  return s.split(/\s+/).filter(Boolean).map((w) => w.replace(/^"(.*)"$/, '$1'))
}

/** What etcd started by this unit would run with: flags win over ETCD_* variables, as in etcd. */
export interface UnitMember {
  name?: string
  dataDir?: string
  peerUrl?: string
  /** Where each value came from, for the diff. */
  from: Partial<Record<'name' | 'dataDir' | 'peerUrl', string>>
  /** --wal-dir / ETCD_WAL_DIR when the unit sets one, and where from. */
  walDir?: { value: string; from: string }
  /** Where --force-new-cluster (or ETCD_FORCE_NEW_CLUSTER=true) comes from, when the unit sets it. */
  forceNewCluster?: string
  /** The TLS files etcd will use (client and peer certificate, key and CA), where each is set, and which are CAs. */
  tlsFiles: Array<{ path: string; from: string; role: 'ca' | 'cert' }>
  /** --listen-client-urls / ETCD_LISTEN_CLIENT_URLS when the unit sets them, and where from. */
  listenClientUrls?: { value: string[]; from: string }
  /** --listen-peer-urls / ETCD_LISTEN_PEER_URLS when the unit sets them. */
  listenPeerUrls?: string[]
}

const SETTINGS = [
  ['name', 'name', 'ETCD_NAME'],
  ['dataDir', 'data-dir', 'ETCD_DATA_DIR'],
  ['peerUrl', 'initial-advertise-peer-urls', 'ETCD_INITIAL_ADVERTISE_PEER_URLS'],
] as const

const TLS_SETTINGS = ['cert-file', 'key-file', 'trusted-ca-file', 'peer-cert-file', 'peer-key-file', 'peer-trusted-ca-file'] as const

export function unitMember(u: UnitConfig): UnitMember {
  // $VAR and ${VAR} words in ExecStart expand (and split) from the unit's environment.
  const args = u.execArgs.slice(1).flatMap((a) => {
    const v = /^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$/.exec(a)
    return v ? splitWords(u.env[v[1]] ?? '') : [a]
  })
  // Go's flag package: -name or --name, then =value or the next word; a bool flag alone is true.
  const flag = (name: string, bool = false): string | undefined => {
    for (let i = 0; i < args.length; i++) {
      const a = args[i].replace(/^--?/, '-')
      if (a === `-${name}`) return bool ? 'true' : args[i + 1]
      if (a.startsWith(`-${name}=`)) return a.slice(name.length + 2)
    }
    return undefined
  }
  /** A setting as etcd would take it: its flag wins over its ETCD_ variable; '' is unset. */
  const setting = (flagName: string, envName: string, bool = false) => {
    const f = flag(flagName, bool)
    const value = f ?? u.env[envName]
    if (value === undefined || value === '') return undefined
    return { value, from: f !== undefined ? `--${flagName} in ExecStart` : `${envName} in ${u.envFrom[envName] ?? 'the environment'}` }
  }
  const out: UnitMember = { from: {}, tlsFiles: [] }
  for (const [key, flagName, envName] of SETTINGS) {
    const s = setting(flagName, envName)
    if (!s) continue
    out[key] = key === 'dataDir' ? s.value.replace(/\/+$/, '') : key === 'peerUrl' ? s.value.split(',')[0] : s.value
    out.from[key] = s.from
  }
  for (const name of TLS_SETTINGS) {
    const s = setting(name, `ETCD_${name.toUpperCase().replace(/-/g, '_')}`)
    if (s) out.tlsFiles.push({ path: s.value, from: s.from, role: name.endsWith('ca-file') ? 'ca' : 'cert' })
  }
  const listen = setting('listen-client-urls', 'ETCD_LISTEN_CLIENT_URLS')
  if (listen) out.listenClientUrls = { value: listen.value.split(',').map((u) => u.trim()).filter(Boolean), from: listen.from }
  const listenPeer = setting('listen-peer-urls', 'ETCD_LISTEN_PEER_URLS')
  if (listenPeer) out.listenPeerUrls = listenPeer.value.split(',').map((u) => u.trim()).filter(Boolean)
  const wal = setting('wal-dir', 'ETCD_WAL_DIR')
  if (wal) out.walDir = { value: wal.value.replace(/\/+/g, '/').replace(/(.)\/$/, '$1'), from: wal.from }
  const force = setting('force-new-cluster', 'ETCD_FORCE_NEW_CLUSTER', true)
  // strconv.ParseBool, as etcd parses it.
  if (force && ['1', 't', 'T', 'true', 'TRUE', 'True'].includes(force.value)) out.forceNewCluster = force.from
  return out
}

/**
 * Lines of a diff between the member the inventory describes and the one the
 * unit would start; empty when they agree on every setting the unit states.
 */
export function unitDisagreement(inventory: { name: string; dataDir: string; peerUrl: string }, unit: UnitMember, unitName: string): string[] {
  const labels = { name: 'member name', dataDir: 'data dir', peerUrl: 'peer URL' } as const
  const differ = SETTINGS.map(([k]) => k).filter((k) => unit[k] !== undefined && unit[k] !== inventory[k])
  if (differ.length === 0) return []
  return [
    `--- inventory`,
    `+++ unit ${unitName}`,
    ...differ.flatMap((k) => [`- ${labels[k]}: ${inventory[k]}`, `+ ${labels[k]}: ${unit[k]}   (${unit.from[k]})`]),
  ]
}

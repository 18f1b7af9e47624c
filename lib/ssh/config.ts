// OpenSSH's client configuration (~/.ssh/config, /etc/ssh/ssh_config, or `-F FILE`),
// read for one host the way `ssh` reads it, so an inventory that works with Ansible
// (whose ssh connection runs OpenSSH) works here too.
//
// What OpenSSH does, and so do we (ssh_config(5), readconf.c):
// - Options on the command line come first, then the user's file, then the system's;
//   for each option the first value obtained wins. IdentityFile is the exception: every
//   value is kept, in order.
// - `Host` lines hold patterns (`*`, `?`, `!negation`), matched case-sensitively against
//   the host name as given on the command line (before HostName); a line matches when a
//   pattern matches and no negated one does. Options before the first Host line apply to all.
// - `Include` reads files (globs allowed; relative paths are under ~/.ssh for the user's
//   file, /etc/ssh for the system's) in place, with the Host state of the including line.
//   An Include inside a Host block that does not match includes nothing that can match.
// - An unknown keyword, a keyword without its argument or an unclosed quote is an error
//   naming file and line, as `ssh` stops on it too. `IgnoreUnknown` is honoured.
// - `Match` is refused (file and line named): its criteria (exec, user, canonical, final...)
//   need more than a host name to decide. Pass `-F FILE` to read one file without it.
//
// Lines are split by the `ssh-config` package (quotes, `=`, comments); matching,
// Include and first-wins are here because that package's compute() has neither
// Include nor line numbers, and its glob treats `?` as "zero or one character".
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, isAbsolute, join } from 'node:path'
import { parse, type Directive } from 'ssh-config'
import { InputError } from '../errors.ts'

/** One directive as written: `keyword` lower-case, `args` unquoted, and where it is. */
export interface ConfigLine {
  keyword: string
  args: string[]
  file: string
  line: number
}

/** The value an option got, and where from: `FILE:LINE`, or what the command line says. */
export interface Obtained {
  value: string[]
  from: string
  /** Reading order, across command line and files. */
  seq: number
}

/** The options of one host, first obtained values; `identityfile` holds every value. */
export type ObtainedOptions = Map<string, Obtained[]>

/** Options in front of every file, as `ssh -o Keyword=value` would give them. */
export interface CommandLineOption {
  keyword: string
  value: string
  from: string
}

export interface SshConfigSource {
  /** Files in the order ssh reads them; missing ones are skipped. */
  files: Array<{ path: string; includeBase: string }>
  /** What `~` means in Include. */
  home: string
}

/**
 * What `ssh HOST` would read: `-F FILE` alone when given, else ~/.ssh/config and then
 * /etc/ssh/ssh_config. `home` is $HOME (tests pass their own; OpenSSH itself asks passwd).
 */
export function sshConfigSource(o: { file?: string; home: string; systemFile?: string }): SshConfigSource {
  if (o.file !== undefined) {
    if (o.file === 'none') return { files: [], home: o.home }
    if (!statSync(o.file, { throwIfNoEntry: false })?.isFile()) throw new InputError(`ssh config file not found: ${o.file}`, { hint: 'Check -F / --ssh-config.' })
    return { files: [{ path: o.file, includeBase: join(o.home, '.ssh') }], home: o.home }
  }
  return {
    files: [
      { path: join(o.home, '.ssh', 'config'), includeBase: join(o.home, '.ssh') },
      { path: o.systemFile ?? '/etc/ssh/ssh_config', includeBase: dirname(o.systemFile ?? '/etc/ssh/ssh_config') },
    ],
    home: o.home,
  }
}

// Every option OpenSSH 9.2 knows (ssh_config(5)), the ones later releases added (so a
// config written for a newer ssh is not refused here), and old ones still accepted.
const KEYWORDS = new Set(`addkeystoagent addressfamily batchmode bindaddress bindinterface casignaturealgorithms
canonicaldomains canonicalizefallbacklocal canonicalizehostname canonicalizemaxdots canonicalizepermittedcnames
certificatefile checkhostip ciphers clearallforwardings compression connecttimeout connectionattempts controlmaster
controlpath controlpersist dynamicforward enableescapecommandline enablesshkeysign escapechar exitonforwardfailure
fingerprinthash forkafterauthentication forwardagent forwardx11 forwardx11timeout forwardx11trusted
gssapiauthentication gssapiclientidentity gssapidelegatecredentials gssapikexalgorithms gssapikeyexchange
gssapirenewalforcesrekey gssapiserveridentity gssapitrustdns gatewayports globalknownhostsfile hashknownhosts host
hostkeyalgorithms hostkeyalias hostbasedacceptedalgorithms hostbasedauthentication hostname ipqos identitiesonly
identityagent identityfile ignoreunknown include kbdinteractiveauthentication kbdinteractivedevices kexalgorithms
knownhostscommand localcommand localforward loglevel logverbose macs match nohostauthenticationforlocalhost
numberofpasswordprompts pkcs11provider passwordauthentication permitlocalcommand permitremoteopen port
preferredauthentications proxycommand proxyjump proxyusefdpass pubkeyacceptedalgorithms pubkeyauthentication
rekeylimit remotecommand remoteforward requesttty requiredrsasize revokedhostkeys securitykeyprovider sendenv
serveralivecountmax serveraliveinterval sessiontype setenv stdinnull streamlocalbindmask streamlocalbindunlink
stricthostkeychecking syslogfacility tcpkeepalive tunnel tunneldevice updatehostkeys user userknownhostsfile
verifyhostkeydns visualhostkey xauthlocation
channeltimeout obscurekeystroketiming tag refuseconnection warnweakcrypto versionaddendum
challengeresponseauthentication pubkeyacceptedkeytypes hostbasedkeytypes cipher protocol useroaming
rhostsrsaauthentication rsaauthentication compressionlevel useprivilegedport dsaauthentication
skeyauthentication kerberosauthentication kerberostgtpassing afstokenpassing fallbacktorsh usersh
smartcarddevice`.split(/\s+/))

// Options whose values are a list of words; the others take the rest of the line as one value.
const LISTS = new Set(['host', 'include', 'userknownhostsfile', 'globalknownhostsfile', 'sendenv', 'setenv',
  'ipqos', 'canonicaldomains', 'proxycommand', 'localcommand', 'remotecommand', 'knownhostscommand', 'match',
  'localforward', 'remoteforward', 'dynamicforward', 'canonicalizepermittedcnames', 'ignoreunknown', 'permitremoteopen'])

const MAX_INCLUDE_DEPTH = 16
// Every member reads the same files: parse each once per version of it.
const cache = new Map<string, { stamp: string; lines: ConfigLine[] }>()

/** One file's directives, with line numbers; InputError naming file and line if a line is bad. */
export function readConfigFile(path: string): ConfigLine[] {
  let text: string
  let stamp: string
  try {
    const st = statSync(path)
    stamp = `${st.mtimeMs}:${st.size}`
    const cached = cache.get(path)
    if (cached?.stamp === stamp) return cached.lines
    text = readFileSync(path, 'utf8')
  } catch (e) {
    throw new InputError(`cannot read ssh config: ${(e as Error).message}`, { where: path, cause: e })
  }
  const out: ConfigLine[] = []
  // Line by line, so every directive knows its line and a bad one is named exactly.
  text.split(/\r?\n/).forEach((raw, i) => {
    const where = `${path}:${i + 1}`
    let directives: Directive[]
    try {
      directives = parse(raw).filter((l): l is Directive => l.type === 1 && Boolean((l as Directive).param))
    } catch (e) {
      throw new InputError(`ssh config line does not parse: ${(e as Error).message.replace(/^Cannot read.*/, 'missing argument')}`, { where })
    }
    for (const d of directives) {
      const keyword = d.param.toLowerCase()
      const args = typeof d.value === 'string' ? (d.value === '' ? [] : [d.value]) : d.value.map((v) => v.val)
      if (args.length === 0) throw new InputError(`no argument after keyword "${d.param}"`, { where })
      if (typeof d.value === 'string' && !d.quoted && !LISTS.has(keyword) && /\s/.test(d.value)) {
        throw new InputError(`garbage at end of line after "${d.param} ${d.value.split(/\s+/)[0]}"`, { where })
      }
      out.push({ keyword, args, file: path, line: i + 1 })
    }
  })
  cache.set(path, { stamp, lines: out })
  return out
}

/**
 * The options `ssh` would use for `host` (the name on its command line), with where
 * each came from. `commandLine` options come first, as `ssh -o` ones do.
 */
export function obtainOptions(host: string, source: SshConfigSource, commandLine: CommandLineOption[] = []): ObtainedOptions {
  const got: ObtainedOptions = new Map()
  const ignoreUnknown: string[] = []
  let seq = 0
  const take = (keyword: string, value: string[], from: string): void => {
    const list = got.get(keyword)
    if (!list) {
      got.set(keyword, [{ value, from, seq: seq++ }])
      if (keyword === 'ignoreunknown') ignoreUnknown.push(...value.flatMap((v) => v.split(',')))
    } else if (keyword === 'identityfile' || keyword === 'certificatefile') list.push({ value, from, seq: seq++ })
  }
  for (const o of commandLine) take(o.keyword.toLowerCase(), LISTS.has(o.keyword.toLowerCase()) ? o.value.split(/\s+/) : [o.value], o.from)

  const walk = (lines: ConfigLine[], base: string, active: boolean, neverMatch: boolean, depth: number): void => {
    for (const l of lines) {
      const where = `${l.file}:${l.line}`
      if (l.keyword === 'match') {
        throw new InputError('`Match` blocks are not supported by etcd-rescue', {
          where,
          hint: 'Write the block as a `Host` block, or give etcd-rescue a config without it with -F FILE (--ssh-config FILE).',
        })
      }
      if (l.keyword === 'host') {
        active = !neverMatch && hostMatches(host, l.args)
        continue
      }
      if (!KEYWORDS.has(l.keyword)) {
        if (ignoreUnknown.some((p) => patternMatches(l.keyword, p.toLowerCase()))) continue
        throw new InputError(`bad configuration option: ${l.keyword}`, { where, hint: 'ssh itself stops on this line too; check the spelling.' })
      }
      if (l.keyword === 'include') {
        if (depth >= MAX_INCLUDE_DEPTH) throw new InputError('Include nested too deeply (a loop?)', { where })
        for (const pattern of l.args) {
          for (const file of globFiles(isAbsolute(pattern) || pattern.startsWith('~') ? pattern : join(base, pattern), source.home)) {
            // The included file's Host lines change the state only until its end.
            walk(readConfigFile(file), base, active, neverMatch || !active, depth + 1)
          }
        }
        continue
      }
      if (active) take(l.keyword, l.args, where)
    }
  }
  for (const f of source.files) {
    if (!statSync(f.path, { throwIfNoEntry: false })?.isFile()) continue
    walk(readConfigFile(f.path), f.includeBase, true, false, 0)
  }
  return got
}

/** A Host line's patterns against the name: some pattern matches and no negated one does. */
export function hostMatches(host: string, patterns: string[]): boolean {
  let matched = false
  for (const p of patterns) {
    if (p.startsWith('!')) {
      if (patternMatches(host, p.slice(1))) return false
    } else if (patternMatches(host, p)) matched = true
  }
  return matched
}

/** `*` any run of characters, `?` exactly one; everything else literal (OpenSSH's match_pattern). */
export function patternMatches(text: string, pattern: string): boolean {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')
  return new RegExp(`^${re}$`, 's').test(text)
}

/** glob(3) for Include: wildcards in any path segment, results sorted, no dot files by `*`. */
function globFiles(pattern: string, home: string): string[] {
  const expanded = pattern === '~' || pattern.startsWith('~/') ? join(home, pattern.slice(1)) : pattern
  if (!/[*?]/.test(expanded)) return statSync(expanded, { throwIfNoEntry: false })?.isFile() ? [expanded] : []
  let paths = ['/']
  for (const seg of expanded.split('/').filter(Boolean)) {
    const next: string[] = []
    for (const dir of paths) {
      if (!/[*?]/.test(seg)) {
        next.push(join(dir, seg))
        continue
      }
      let entries: string[] = []
      try { entries = readdirSync(dir) } catch { /* not a directory: no match, as glob(3) */ }
      for (const e of entries.sort()) if (!e.startsWith('.') && patternMatches(e, seg)) next.push(join(dir, e))
    }
    paths = next
  }
  return paths.filter((p) => statSync(p, { throwIfNoEntry: false })?.isFile())
}

// From the options `ssh` would obtain for a host (config.ts) to the SshTarget we
// connect with: values checked, `~` and %-tokens expanded as OpenSSH expands them,
// and the jump hosts of ProxyJump (chains included) resolved through the same config,
// as `ssh -J` does for each hop. Each setting remembers where it came from.
import { createHash } from 'node:crypto'
import { hostname, userInfo } from 'node:os'
import { resolve as resolvePath } from 'node:path'
import { InputError } from '../errors.ts'
import type { SshTarget } from './connection.ts'
import { obtainOptions, type CommandLineOption, type ObtainedOptions, type SshConfigSource } from './config.ts'
import { shlexSplit } from '../inventory/shlex.ts'

/**
 * Setting name (as `ssh -G` prints it) → where its value came from. `identityfile` has
 * one line per key file, in the order of privateKeyFile and identityFiles.
 */
export type Origins = Record<string, string>

export interface Resolved {
  target: SshTarget
  origins: Origins
  warnings: string[]
}

export interface ResolveContext {
  source: SshConfigSource
  /** $HOME: `~` and %d. */
  home: string
  /** The local user (%u, and the remote user when none is set). Default: this process's. */
  localUser?: string
}

const MAX_HOPS = 8

/** Resolves `host` (the name `ssh` would be given) with `commandLine` options in front of the files. */
export function resolveSshTarget(host: string, commandLine: CommandLineOption[], ctx: ResolveContext, hops = 0): Resolved {
  const got = obtainOptions(host, ctx.source, commandLine)
  return targetOf(host, got, ctx, hops)
}

function targetOf(host: string, got: ObtainedOptions, ctx: ResolveContext, hops: number): Resolved {
  const origins: Origins = {}
  const warnings: string[] = []
  const first = (k: string) => {
    const o = got.get(k)?.[0]
    if (o) origins[k] = o.from
    return o
  }
  const localUser = ctx.localUser ?? userInfo().username

  const hn = first('hostname')
  const hostName = (hn ? expand(hn.value[0], { h: host }, hn.from) : host).toLowerCase()
  const portOpt = first('port')
  const port = portOpt ? toPort(portOpt.value[0], portOpt.from) : 22
  const userOpt = first('user')
  const user = userOpt?.value[0]
  const alias = first('hostkeyalias')?.value[0]
  const tokens: Record<string, string> = {
    h: hostName, n: host, p: String(port), r: user ?? localUser, u: localUser, d: ctx.home,
    i: String(userInfo().uid), L: hostname(), l: hostname().split('.')[0], k: alias ?? host,
  }
  tokens.C = createHash('sha1').update(`${tokens.l}${tokens.h}${tokens.p}${tokens.r}`).digest('hex')
  const file = (text: string, from: string): string => resolvePath(tilde(expand(text, tokens, from), ctx.home))

  const target: SshTarget = { host: hostName, port, become: false }
  if (user !== undefined) target.user = user
  const ids = got.get('identityfile') ?? []
  if (ids.length) {
    target.identityFiles = ids.map((o) => file(o.value[0], o.from))
    origins.identityfile = ids.map((o) => o.from).join('\n')
  }
  const only = first('identitiesonly')
  if (only) target.identitiesOnly = yesNo(only.value[0], only.from, 'IdentitiesOnly')
  const kh = first('userknownhostsfile')
  if (kh && kh.value[0].toLowerCase() !== 'none') target.knownHostsFiles = kh.value.map((v) => file(v, kh.from))
  const strict = first('stricthostkeychecking')
  if (strict) {
    const s = strictness(strict.value[0], strict.from)
    if (s) target.strictHostKeyChecking = s
  }
  const timeout = first('connecttimeout')
  if (timeout && timeout.value[0].toLowerCase() !== 'none') target.connectTimeoutMs = seconds(timeout.value[0], timeout.from, 'ConnectTimeout') * 1000
  const alive = first('serveraliveinterval')
  if (alive) target.serverAliveIntervalMs = seconds(alive.value[0], alive.from, 'ServerAliveInterval') * 1000

  // ProxyJump and ProxyCommand are one option to ssh: whichever comes first wins.
  const proxy = [got.get('proxyjump')?.[0], got.get('proxycommand')?.[0]]
  const jumpFirst = proxy[0] && (!proxy[1] || proxy[0].seq < proxy[1].seq)
  if (proxy[0] && jumpFirst) {
    origins.proxyjump = proxy[0].from
    const spec = proxy[0].value[0]
    if (spec.toLowerCase() !== 'none') {
      if (hops >= MAX_HOPS) throw new InputError(`ProxyJump chain longer than ${MAX_HOPS} hops (a loop?)`, { where: proxy[0].from })
      target.jump = jumpChain(spec, proxy[0].from, ctx, hops)
    }
  } else if (proxy[1]) {
    origins.proxycommand = proxy[1].from
    const jump = proxyCommandJump(proxy[1].value.join(' '), proxy[1].from, warnings)
    if (jump) target.jump = jump
  }
  return { target, origins, warnings }
}

/**
 * `ProxyJump a,b`: ssh reaches b through a, and the host through b. Each hop is resolved
 * through the config by its own name, as the `ssh -J` that OpenSSH runs for it would.
 */
function jumpChain(spec: string, from: string, ctx: ResolveContext, hops: number): SshTarget {
  let jump: SshTarget | undefined
  for (const hop of spec.split(',')) {
    const m = /^(?:ssh:\/\/)?(?:([^@]+)@)?(\[[^\]]+\]|[^:@[\]]+)(?::([0-9]+))?$/.exec(hop.trim())
    if (!m) throw new InputError(`cannot read ProxyJump hop '${hop}' (expected [user@]host[:port])`, { where: from })
    const cli: CommandLineOption[] = []
    const via = `ProxyJump at ${from}`
    if (m[1]) cli.push({ keyword: 'User', value: m[1], from: via })
    if (m[3]) cli.push({ keyword: 'Port', value: m[3], from: via })
    // A later hop is reached through the one before it, not through its own ProxyJump.
    if (jump) cli.push({ keyword: 'ProxyJump', value: 'none', from: via })
    const r = resolveSshTarget(m[2].replace(/^\[(.*)\]$/, '$1'), cli, ctx, hops + 1)
    if (jump) r.target.jump = jump
    jump = r.target
  }
  return jump!
}

/** ProxyCommand in its common form `ssh -W %h:%p [-p PORT] [-l USER] [-i KEY] [user@]bastion`. */
export function proxyCommandJump(command: string, from: string, warnings: string[]): SshTarget | undefined {
  let argv: string[] = []
  try { argv = shlexSplit(command, { comments: false }) } catch { /* reported below */ }
  if (argv[0]?.toLowerCase() === 'none') return undefined
  const opts = sshOptions(argv.slice(1))
  const forward = opts.find(([o]) => o === 'W')?.[1]
  const words = argv.slice(1).filter((w, i, all) => !w.startsWith('-') && !(i > 0 && isOptionWithArg(all[i - 1])))
  if (!/(^|\/)ssh$/.test(argv[0] ?? '') || !forward || !/^\[?%h\]?:%p$/.test(forward) || words.length !== 1) {
    warnings.push(`ProxyCommand '${command}' (${from}) is not of the form 'ssh -W %h:%p [user@]host'; it is ignored and hosts are reached directly`)
    return undefined
  }
  const [, user, host] = /^(?:([^@]+)@)?(.+)$/.exec(words[0])!
  const opt = (o: string): string | undefined => opts.find(([k]) => k === o)?.[1]
  const port = opt('p')
  const key = opt('i')
  const jump: SshTarget = { host, port: port ? toPort(port, from) : 22, become: false }
  if (user ?? opt('l')) jump.user = user ?? opt('l')
  if (key) jump.privateKeyFile = resolvePath(key)
  return jump
}

// OpenSSH options that take an argument (from ssh.c's getopt string).
const WITH_ARG = new Set('bBcDeEFiIJlLmoOpPQRSwW'.split(''))
const isOptionWithArg = (w: string): boolean => /^-[A-Za-z]+$/.test(w) && WITH_ARG.has(w[w.length - 1])

/** [option letter, argument] pairs of an ssh argv, like getopt; other words are skipped. */
export function sshOptions(argv: string[]): [string, string][] {
  const out: [string, string][] = []
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]
    if (!word.startsWith('-') || word === '-') continue
    for (let j = 1; j < word.length; j++) {
      if (!WITH_ARG.has(word[j])) continue // a flag such as -q or -C
      const arg = j + 1 < word.length ? word.slice(j + 1) : argv[++i]
      if (arg !== undefined) out.push([word[j], arg])
      break
    }
  }
  return out
}

/** %-tokens as OpenSSH's percent_expand: only the ones given; `%%` is `%`; others are an error. */
export function expand(text: string, tokens: Record<string, string>, from: string): string {
  return text.replace(/%(.?)/g, (all, t: string) => {
    if (t === '%') return '%'
    if (t in tokens) return tokens[t]
    throw new InputError(`unknown token ${all || '%'} in '${text}'`, { where: from })
  })
}

export function tilde(p: string, home: string): string {
  return p === '~' ? home : p.startsWith('~/') ? home + p.slice(1) : p
}

function toPort(v: string, from: string): number {
  const n = /^[0-9]+$/.test(v) ? Number(v) : NaN
  if (!(n >= 1 && n <= 65535)) throw new InputError(`bad port '${v}' (1-65535)`, { where: from })
  return n
}

function seconds(v: string, from: string, what: string): number {
  if (!/^[0-9]+$/.test(v)) throw new InputError(`${what} takes whole seconds, not '${v}'`, { where: from })
  return Number(v)
}

function yesNo(v: string, from: string, what: string): boolean {
  const s = v.toLowerCase()
  if (s === 'yes' || s === 'true') return true
  if (s === 'no' || s === 'false') return false
  throw new InputError(`${what} takes yes or no, not '${v}'`, { where: from })
}

function strictness(v: string, from: string): SshTarget['strictHostKeyChecking'] {
  const s = v.toLowerCase()
  if (s === 'yes' || s === 'true') return 'yes'
  if (s === 'no' || s === 'off' || s === 'false') return 'no'
  if (s === 'accept-new') return 'accept-new'
  if (s === 'ask') return undefined // no one to ask: the caller's default (yes)
  throw new InputError(`StrictHostKeyChecking takes yes, no, ask or accept-new, not '${v}'`, { where: from })
}

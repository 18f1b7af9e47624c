// One SSH connection to one host, over ssh2. What OpenSSH does for us by default
// and ssh2 does not, we do here: known_hosts checking (an unknown or changed key
// is refused, naming the fingerprint), default identities and the agent, a jump
// host, a connect timeout, and keepalives so a lost host fails instead of hanging.
import { Client, type AgentAuthMethod, type BaseAgent, type ClientChannel, type PublicKeyAuthMethod } from 'ssh2'
import { readFileSync, existsSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { randomBytes } from 'node:crypto'
import { BecomeWatcher } from './become.ts'
import { sh, type Script } from '../shell/sh.ts'
import {
  AuthError, ConnectError, HostKeyMismatchError, HostKeyUnknownError, RemoteCommandError, SshError,
} from './errors.ts'
import { KnownHosts, blobType, fingerprint, hostKeyAlgorithms } from './known-hosts.ts'

/**
 * Where and how to connect: the inventory's connection variables, ansible.cfg and the
 * ssh config map onto this (lib/inventory/ssh.ts, lib/ssh/resolve.ts).
 */
export interface SshTarget {
  host: string
  port: number
  /** Default: $USER, else root. */
  user?: string
  /** Ansible's private key (inventory, --private-key, ansible.cfg): offered first. */
  privateKeyFile?: string
  /** The ssh config's IdentityFile entries, offered after privateKeyFile. No key at all: ~/.ssh/id_*. */
  identityFiles?: string[]
  /** Offer only the key files, not the agent's keys. Default false. */
  identitiesOnly?: boolean
  /** Default: ConnectOptions.knownHostsFile, else ~/.ssh/known_hosts. */
  knownHostsFiles?: string[]
  /** Default (and for `ask`, with no one to ask): yes. */
  strictHostKeyChecking?: 'yes' | 'no' | 'accept-new'
  /** Handshake timeout; ConnectOptions.connectTimeoutMs (the --connect-timeout flag) overrides it. Default 10 s. */
  connectTimeoutMs?: number
  /** Keepalive interval. Default 5 s (ssh2 gives up after 3 unanswered). */
  serverAliveIntervalMs?: number
  /** Reached through this host (ProxyJump); a chain nests. */
  jump?: SshTarget
  become: boolean
  becomeUser?: string
}

export interface ConnectOptions {
  /** Give up on a host that has not finished the SSH handshake by then. Default: the target's, else 10 s. */
  connectTimeoutMs?: number
  /** Used when the target names no known_hosts file. Default ~/.ssh/known_hosts. */
  knownHostsFile?: string
  /** Called with a warning (e.g. host-key checking turned off by the inventory). */
  onWarning?: (message: string) => void
  /**
   * The become password (-K/--ask-become-pass), for a sudo that asks for one.
   * Default: none, and sudo runs with -n (never prompts, fails fast).
   */
  becomePassword?: string
  /**
   * An agent this connection forwards to the host (for a relay hop: lib/transfer/agent.ts),
   * used only for forwarding, never to log in here. Forwarded on the one exec with agentForward.
   */
  forwardAgent?: BaseAgent
  /** Gives up on a connection still being made (the run ended first); one already up is not touched. */
  signal?: AbortSignal
}

export interface ExecResult {
  code: number | null
  signal?: string
  stdout: string
  stderr: string
}

export interface ExecOptions {
  /** Data for the command's stdin; the channel's stdin is closed after it. */
  stdin?: Buffer | string
  /** Do not throw on a non-zero exit; the caller reads `code`. Default false. */
  allowFailure?: boolean
  /** Run without sudo even when the target says become. Default false. */
  noBecome?: boolean
  /** Stop waiting (and close the channel) after this long. Default: no limit. */
  timeoutMs?: number
  /** Live output, for -v. */
  onOutput?: (text: string, stream: 'stdout' | 'stderr') => void
  /** Live output as bytes (a stream whose framing counts bytes: the persistent session's). */
  onData?: (chunk: Buffer, stream: 'stdout' | 'stderr') => void
  /** Stream stdout here instead of collecting it (downloads); `stdout` in the result is then empty. */
  stdout?: NodeJS.WritableStream
  /** Forward ConnectOptions.forwardAgent on this command's session (one per connection: ssh2 binds it to the first). */
  agentForward?: boolean
}

/** How a step that may time out reports its process group on stderr (removed from what callers see). */
const PGID_MARKER = 'etcd-rescue-pgid'

/** What a standby command's taker gives: its output as bytes, as the persistent session reads it. */
export type StandbyOptions = Pick<ExecOptions, 'onData'>

/**
 * A standby's command: one line on stdin, the script (base64), then the script in
 * its place with the rest of stdin. `read` takes a pipe byte by byte, never past the
 * line. EOF first (the run ended before it was needed): it exits having done nothing.
 */
const STANDBY: Script = sh`IFS= read -r s || exit 0
command -v base64 >/dev/null 2>&1 || { echo "base64 not found (coreutils)" >&2; exit 69; }
s=$(printf '%s' "$s" | base64 -d) || { echo "the script sent to this host did not decode" >&2; exit 70; }
exec sh -c "$s"`

export function targetLabel(t: SshTarget): string {
  const hop = t.jump ? ` via ${targetLabel(t.jump)}` : ''
  return `${t.user ? `${t.user}@` : ''}${t.host}:${t.port}${hop}`
}

export class SshHost {
  /** Remote commands started on this host: each is an exec channel, so a login shell there (a relay hop's logins are added by lib/transfer/relay.ts). */
  commandStarts = 0
  /** Random per connection: sudo's prompt, and the line the become shell prints once sudo let it in. */
  private readonly promptMarker = `etcd-rescue-sudo-prompt-${randomBytes(8).toString('hex')}:`
  private readonly successMarker = `etcd-rescue-become-ok-${randomBytes(8).toString('hex')}`
  private lost = false

  private constructor(
    readonly name: string,
    readonly target: SshTarget,
    private readonly client: Client,
    /** The jump host this connection goes through, closed with it. */
    private readonly bastion?: SshHost,
    private readonly becomePassword?: string,
    /** The host key this connection verified (the blob the server presented). */
    readonly hostKey?: Buffer,
  ) {
    client.on('close', () => { this.lost = true })
  }

  /** The connection is gone (keepalives unanswered, reset, closed): a retry needs a new one. */
  get closed(): boolean {
    return this.lost
  }

  /** Connects (through the jump host if any) and verifies the host key. */
  static async connect(name: string, target: SshTarget, options: ConnectOptions = {}): Promise<SshHost> {
    // Given up before it began (queued behind others when the run ended): nothing is read or said.
    if (options.signal?.aborted) throw givenUp(name, target)
    let bastion: SshHost | undefined
    let sock: Readable | undefined
    if (target.jump) {
      // A bastion with no key or known_hosts of its own (from the ssh config) gets the
      // target's: an inventory's key and known_hosts are what its operator means for both.
      const jump = {
        ...target.jump,
        privateKeyFile: target.jump.privateKeyFile ?? (target.jump.identityFiles ? undefined : target.privateKeyFile),
        knownHostsFiles: target.jump.knownHostsFiles ?? target.knownHostsFiles,
      }
      // A chain (ProxyJump a,b): the bastion is itself reached through the one before it.
      const via = await SshHost.connect(`${name} (jump host ${jump.host})`, jump, options)
      bastion = via
      sock = await via.forward(target.host, target.port).catch((err) => {
        via.close()
        throw new ConnectError(name, `jump host ${jump.host} could not reach ${target.host}:${target.port}: ${(err as Error).message}`)
      })
    }
    const { client, hostKey } = await open(name, target, options, sock).catch((err) => {
      bastion?.close()
      throw err
    })
    return new SshHost(name, target, client, bastion, options.becomePassword, hostKey)
  }

  /** Commands go through sudo -S with the become password (not sudo -n). */
  private get passwordBecome(): boolean {
    return this.target.become && this.becomePassword !== undefined
  }

  /**
   * Wraps a command so it runs under POSIX sh, with sudo when the target says
   * become. Without a become password: sudo -n, which never prompts, so a
   * missing NOPASSWD fails fast. With one, as Ansible does it: sudo -S with a
   * random prompt (answered with the password when it shows on stderr), and a
   * shell that first prints a random success line, so we know sudo let us in
   * before any of the command's own stdin is sent.
   */
  wrap(command: Script, noBecome = false): Script {
    const shell = sh`sh -c ${command.text}`
    const user = this.target.becomeUser ?? 'root'
    if (!this.target.become || noBecome) return shell
    if (!this.passwordBecome) return sh`sudo -n -H -u ${user} -- ${shell}`
    const inner = sh`echo ${this.successMarker}; exec sh -c "$1"`
    return sh`sudo -S -p ${this.promptMarker} -H -u ${user} -- sh -c ${inner.text} sh ${command.text}`
  }

  /** Opens a channel for a command; used directly for streaming uploads. */
  spawn(command: Script, options: ExecOptions = {}): { channel: Promise<ClientChannel>; result: Promise<ExecResult> } {
    let resolveChannel!: (c: ClientChannel) => void
    let rejectChannel!: (e: unknown) => void
    const channel = new Promise<ClientChannel>((res, rej) => {
      resolveChannel = res
      rejectChannel = rej
    })
    // A step that can time out first tells its process group, so that a timeout
    // ends it on the host too, not just its channel (sshd does not kill a
    // session's processes when the channel closes). Read with a builtin: no fork.
    const run = options.timeoutMs ? sh`read -r _ _ _ _ pg _ < /proc/$$/stat 2>/dev/null && echo "etcd-rescue-pgid=$pg" >&2
${command}` : command
    channel.catch(() => {})
    // On a connection that is gone ssh2 throws at once and never calls back: both promises must
    // say so, or a caller waiting for the channel (a streaming upload) would wait forever.
    if (this.closed) {
      const e = new SshError(this.name, 'could not open a channel: the connection is gone')
      rejectChannel(e)
      const result = Promise.reject(e)
      result.catch(() => {})
      return { channel, result }
    }
    this.commandStarts++
    const result = new Promise<ExecResult>((resolve, reject) => {
      const failed = (err: Error) => {
        const e = new SshError(this.name, `could not open a channel: ${err.message}`)
        rejectChannel(e)
        reject(e)
      }
      try {
        // ssh2 reads agentForward from the exec options at run time; its types leave it out.
        this.client.exec(this.wrap(run, options.noBecome).text, (options.agentForward ? { agentForward: true } : {}) as Record<string, never>, (err, stream) => {
          if (err) return failed(err)
          const viaPassword = this.passwordBecome && !options.noBecome
          // The caller's stdin (and a streaming upload's channel) only once sudo let us in.
          const ready = () => {
            resolveChannel(stream)
            if (options.stdin !== undefined) stream.end(options.stdin)
          }
          if (!viaPassword) ready()
          const out: Buffer[] = []
          const errOut: Buffer[] = []
          let code: number | null = null
          let signal: string | undefined
          let timer: NodeJS.Timeout | undefined
          if (options.timeoutMs) {
            timer = setTimeout(() => {
              signal = 'TIMEOUT'
              stream.close()
              const pg = Number(new RegExp(`^${PGID_MARKER}=(\\d+)$`, 'm').exec(Buffer.concat(errOut).toString())?.[1])
              if (Number.isInteger(pg) && pg > 1) void this.killGroup(pg)
            }, options.timeoutMs)
          }
          const stdoutData = (d: Buffer) => {
            if (options.stdout) options.stdout.write(d)
            else if (options.onData) options.onData(d, 'stdout')
            else {
              out.push(d)
              options.onOutput?.(d.toString(), 'stdout')
            }
          }
          const stderrData = (d: Buffer) => {
            errOut.push(d)
            options.onData?.(d, 'stderr')
            options.onOutput?.(d.toString(), 'stderr')
          }
          // Both streams must be consumed or 'close' never fires.
          if (!viaPassword) {
            if (options.stdout) stream.pipe(options.stdout, { end: false })
            else stream.on('data', stdoutData)
            stream.stderr.on('data', stderrData)
          } else {
            const become = new BecomeWatcher(this.promptMarker, this.successMarker, {
              sendPassword: () => stream.write(`${this.becomePassword}\n`),
              giveUp: () => stream.end(),
              ready,
              stdout: stdoutData,
              stderr: stderrData,
            })
            stream.on('data', (d: Buffer) => become.stdout(d))
            stream.stderr.on('data', (d: Buffer) => become.stderr(d))
            stream.on('close', () => {
              become.flush()
              if (!become.accepted) {
                rejectChannel(new SshError(this.name, become.promptCount > 1 ? 'sudo refused the become password (-K)' : 'sudo did not let the command run'))
              }
            })
          }
          stream.on('exit', (c: number | null, sig?: string) => {
            if (signal === 'TIMEOUT') return // what ended it on the host after the timeout is ours, not the cause
            code = c
            if (sig) signal = sig
          })
          stream.on('close', () => {
            clearTimeout(timer)
            const stderr = Buffer.concat(errOut).toString().replace(new RegExp(`^${PGID_MARKER}=\\d+\\n`, 'm'), '')
            const r: ExecResult = { code, signal, stdout: Buffer.concat(out).toString(), stderr }
            if (!options.allowFailure && (code !== 0 || signal)) {
              reject(new RemoteCommandError(this.name, command.text, code, signal, r.stdout, r.stderr))
            } else resolve(r)
          })
        })
      } catch (err) {
        failed(err as Error)
      }
    })
    result.catch(() => {})
    return { channel, result }
  }

  /** TERM, then KILL after 2 s, to a timed-out step's process group on the host. */
  async killGroup(pgid: number): Promise<void> {
    await this.exec(sh`pg=${pgid}; kill -TERM "-$pg" 2>/dev/null || exit 0; sleep 2; kill -KILL "-$pg" 2>/dev/null; exit 0`, { allowFailure: true, timeoutMs: undefined })
      .catch(() => undefined)
  }

  /**
   * Starts a remote command now whose script is given later (takeStandby): the
   * login shell, the slow part of a command's start on many hosts (profile
   * scripts, version-manager hooks), runs while this machine still works out
   * what the script is. Until then it only waits for one line on its stdin and
   * runs nothing; a connection closed before it is used ends it (EOF), nothing
   * done. Only the first command of a run is worth it: a persistent session's
   * later steps start no login shell.
   */
  startStandby(): void {
    // Not with a become password: sudo -S would be given it (and a wrong one logged, counted
    // toward a lockout) before the run knows its snapshot is sound.
    if (this.standby || this.closed || this.passwordBecome) return
    let taker: StandbyOptions | undefined
    // What the login shell says before the script runs (a profile's chatter, kept up to
    // 64 KiB) is handed to the taker once it is listening, before anything that follows.
    const early: Array<[Buffer, 'stdout' | 'stderr']> = []
    let kept = 0
    const { channel, result } = this.spawn(STANDBY, {
      allowFailure: true,
      onData: (d, stream) => {
        if (taker) return taker.onData?.(d, stream)
        if (kept + d.length > 65536) return
        kept += d.length
        early.push([d, stream])
      },
    })
    this.standby = {
      run: (command, options) => {
        // The taker sets up its handlers right after this returns: a microtask runs before
        // any further data (an I/O event) can arrive.
        queueMicrotask(() => {
          for (const [d, stream] of early.splice(0)) options.onData?.(d, stream)
          taker = options
        })
        void channel.then((c) => c.write(`${Buffer.from(command.text).toString('base64')}\n`), () => {})
        return { channel, result }
      },
    }
  }

  private standby?: { run(command: Script, options: StandbyOptions): { channel: Promise<ClientChannel>; result: Promise<ExecResult> } }

  /**
   * Runs `command` in the shell startStandby started (as spawn would, without
   * waiting for a login shell), or undefined when there is none (never started,
   * already taken, or its connection is gone). Its exit never rejects the
   * result (allowFailure); its output comes only through onData.
   */
  takeStandby(command: Script, options: StandbyOptions): { channel: Promise<ClientChannel>; result: Promise<ExecResult> } | undefined {
    const s = this.standby
    this.standby = undefined
    if (!s || this.closed) return undefined
    return s.run(command, options)
  }

  exec(command: Script, options: ExecOptions = {}): Promise<ExecResult> {
    const { channel, result } = this.spawn(command, options)
    if (options.stdin === undefined) channel.then((c) => c.end(), () => {})
    return result
  }

  /** A TCP connection made from this host (as `ssh -L` does): reaches ports only the host can. */
  forward(host: string, port: number): Promise<ClientChannel> {
    return new Promise((resolve, reject) =>
      this.client.forwardOut('127.0.0.1', 0, host, port, (err, stream) =>
        err ? reject(new SshError(this.name, `cannot reach ${host}:${port} from this host: ${err.message}`)) : resolve(stream)),
    )
  }

  close(): void {
    this.client.end()
    this.bastion?.close()
  }
}

const DEFAULT_IDENTITIES = ['id_ed25519', 'id_ecdsa', 'id_rsa']

/**
 * The keys to offer, in OpenSSH's order: Ansible's private key, then the ssh config's
 * IdentityFile entries; with neither, the default ~/.ssh/id_* that exist. Ansible's key
 * must be readable; a config's IdentityFile that does not exist is skipped, as ssh does.
 */
export function identities(target: SshTarget, label: string): Buffer[] {
  const keys: Buffer[] = []
  if (target.privateKeyFile) {
    try {
      keys.push(readFileSync(target.privateKeyFile))
    } catch (err) {
      throw new AuthError(label, `cannot read private key ${target.privateKeyFile}: ${(err as Error).message}`,
        'Check ansible_ssh_private_key_file (or -i in the SSH args) in the inventory, --private-key, or private_key_file in ansible.cfg.')
    }
  }
  for (const f of target.identityFiles ?? []) if (existsSync(f)) keys.push(readFileSync(f))
  if (target.privateKeyFile || target.identityFiles?.length) return keys
  return DEFAULT_IDENTITIES.map((f) => join(homedir(), '.ssh', f)).filter(existsSync).map((f) => readFileSync(f))
}

/** A connection the run gave up before it was made (ConnectOptions.signal). */
const givenUp = (label: string, target: SshTarget) => new ConnectError(label, `connecting to ${target.host}:${target.port} was given up: the run ended first`)

function open(label: string, target: SshTarget, options: ConnectOptions, sock?: Readable): Promise<{ client: Client; hostKey?: Buffer }> {
  const knownHostsFiles = target.knownHostsFiles ?? [options.knownHostsFile ?? join(homedir(), '.ssh', 'known_hosts')]
  const knownHostsFile = knownHostsFiles.join(' ')
  const strict = target.strictHostKeyChecking ?? 'yes'
  const knownHosts = KnownHosts.load(knownHostsFiles)
  const timeoutMs = options.connectTimeoutMs ?? target.connectTimeoutMs ?? 10_000
  const onRecord = knownHosts.keysFor(target.host, target.port).filter((k) => !k.revoked)
  if (strict === 'no') options.onWarning?.(`${label}: host-key checking is off for this host (StrictHostKeyChecking=no)`)

  const user = target.user ?? process.env.USER ?? 'root'
  const keys = identities(target, label)
  const agent = target.identitiesOnly ? undefined : process.env.SSH_AUTH_SOCK
  const methods: Array<PublicKeyAuthMethod | AgentAuthMethod> = [
    ...keys.map((key): PublicKeyAuthMethod => ({ type: 'publickey', username: user, key })),
    ...(agent ? [{ type: 'agent', username: user, agent } as AgentAuthMethod] : []),
  ]
  let keyProblem: SshError | undefined
  let hostKey: Buffer | undefined

  return new Promise((resolve, reject) => {
    const client = new Client()
    const signal = options.signal
    const abandon = () => {
      client.destroy()
      reject(givenUp(label, target))
    }
    if (signal?.aborted) return abandon()
    signal?.addEventListener('abort', abandon, { once: true })
    client.on('ready', () => {
      signal?.removeEventListener('abort', abandon)
      resolve({ client, hostKey })
    })
    client.on('close', () => signal?.removeEventListener('abort', abandon))
    client.on('error', (err: Error & { level?: string }) => {
      client.end()
      if (keyProblem) return reject(keyProblem)
      if (err.level === 'client-authentication') {
        return reject(new AuthError(label, `SSH login as ${user} was refused (tried ${keys.length} key(s)${agent ? ' and the agent' : ''})`,
          'Check ansible_user and ansible_ssh_private_key_file, and that the key is in the host\'s authorized_keys.', err))
      }
      if (err.level === 'client-timeout' || /Timed out/.test(err.message)) {
        return reject(new ConnectError(label, `no SSH answer from ${target.host}:${target.port} within ${timeoutMs / 1000} s`,
          'Is the host up and reachable from here? Raise --connect-timeout for slow links.', err))
      }
      reject(new ConnectError(label, `cannot connect to ${target.host}:${target.port}: ${err.message}`, undefined, err))
    })
    client.connect({
      host: target.host,
      port: target.port,
      username: user,
      sock,
      readyTimeout: timeoutMs,
      keepaliveInterval: target.serverAliveIntervalMs || 5_000,
      keepaliveCountMax: 3,
      // A forwarded agent is never offered for this login (ssh2 would try it when no method is given).
      authHandler: methods.length || options.forwardAgent ? methods : undefined,
      ...(options.forwardAgent ? { agent: options.forwardAgent, agentForward: true } : {}),
      // Offer only the key types on record, as ssh does, so the server presents a key we can check.
      algorithms: onRecord.length && strict !== 'no'
        ? { serverHostKey: [...new Set(onRecord.flatMap((k) => hostKeyAlgorithms(k.type)))] as never }
        : undefined,
      hostVerifier: (blob: Buffer) => {
        hostKey = Buffer.from(blob)
        if (strict === 'no') return true
        const verdict = knownHosts.check(target.host, target.port, blob)
        if (verdict === 'ok') return true
        const fp = `${blobType(blob)} ${fingerprint(blob)}`
        if (verdict === 'unknown' && strict === 'accept-new') {
          options.onWarning?.(`${label}: accepting unknown host key ${fp} (StrictHostKeyChecking=accept-new)`)
          return true
        }
        if (verdict === 'unknown') {
          keyProblem = new HostKeyUnknownError(label, `host key of ${target.host}:${target.port} is not in ${knownHostsFile} (it presented ${fp})`,
            `Verify that fingerprint out of band, then add it: ssh-keyscan -p ${target.port} ${target.host} >> ${knownHostsFile}`)
        } else {
          keyProblem = new HostKeyMismatchError(label, `host key of ${target.host}:${target.port} does NOT match ${knownHostsFile} (${verdict}; it presented ${fp})`,
            'Someone may be impersonating this host, or it was reinstalled. Find out which before you remove the old key with ssh-keygen -R.')
        }
        return false
      },
    })
  })
}

// Running a command on a lab host the way an operator would: OpenSSH's client,
// non-interactive (BatchMode), strict host-key checking against the lab's own
// known_hosts, the lab's key only, no ~/.ssh/config. A host-key or connection
// failure is exit code 255 with ssh's message on stderr, as with plain ssh.
import { readFileSync } from 'node:fs'
import { InputError } from '../errors.ts'
import { sh, type Script } from '../shell/sh.ts'
import { run, type CommandResult } from './exec.ts'
import { openLab, type LabRef } from './open.ts'

export interface SshExecOptions {
  /** Sent to the command's stdin, which is then closed. Default: empty stdin. */
  input?: string
  /** Kill ssh after this long. Default 120 s. */
  timeoutMs?: number
  /** Check the host key against this file instead of the lab's known_hosts (tests). */
  knownHostsFile?: string
  /**
   * systemd labs, where root cannot log in: run the command as root through ops's
   * sudo (with the lab's password on stdin when sudo asks for one). Default true;
   * false runs it as ops. The tini lab logs in as root either way.
   */
  asRoot?: boolean
}

export interface SshResult {
  stdout: string
  stderr: string
  /** The remote command's exit code; 255 when ssh itself failed; null when killed. */
  code: number | null
}

/** OpenSSH client arguments for a lab host (also what the inventory's connection vars amount to). */
export function sshArgs(privateKey: string, knownHostsFile: string, address: string, user = 'root'): string[] {
  return [
    'ssh', '-F', 'none',
    '-i', privateKey,
    '-o', 'IdentitiesOnly=yes',
    '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', `UserKnownHostsFile=${knownHostsFile}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'ConnectTimeout=10',
    '-o', 'ServerAliveInterval=5',
    '-o', 'ServerAliveCountMax=3',
    '-o', 'LogLevel=ERROR',
    '-l', user,
    address,
  ]
}

/** Run a shell command line on host `hostIndex` (1-based) of a lab. */
export async function sshExec(lab: LabRef, hostIndex: number, command: Script, options: SshExecOptions = {}): Promise<SshResult> {
  const { state, paths } = openLab(lab)
  const host = state.hosts.find((h) => h.index === hostIndex)
  if (!host) throw new InputError(`lab "${state.name}" has no host ${hostIndex} (it has 1..${state.hosts.length})`)
  let remote = command.text
  let input = options.input
  const sd = state.systemd
  if (sd && (options.asRoot ?? true)) {
    if (sd.sudo === 'nopasswd') remote = sh`sudo -n -- sh -c ${remote}`.text
    else {
      // sudo -S reads the password line byte by byte; the rest of stdin stays the command's.
      remote = sh`sudo -S -p '' -- sh -c ${remote}`.text
      input = `${readFileSync(paths.becomePassword, 'utf8').trim()}\n${input ?? ''}`
    }
  }
  const argv = [...sshArgs(paths.privateKey, options.knownHostsFile ?? paths.knownHosts, host.address, sd?.user), '--', remote]
  const result: CommandResult = await run(argv, { input, timeoutMs: options.timeoutMs, allowFailure: true })
  return { stdout: result.stdout, stderr: result.stderr, code: result.code }
}

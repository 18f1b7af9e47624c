// Running a command on a lab host the way an operator would: OpenSSH's client,
// non-interactive (BatchMode), strict host-key checking against the lab's own
// known_hosts, the lab's key only, no ~/.ssh/config. A host-key or connection
// failure is exit code 255 with ssh's message on stderr, as with plain ssh.
import { InputError } from '../errors.ts'
import type { Script } from '../shell/sh.ts'
import { run, type CommandResult } from './exec.ts'
import { openLab, type LabRef } from './open.ts'

export interface SshExecOptions {
  /** Sent to the command's stdin, which is then closed. Default: empty stdin. */
  input?: string
  /** Kill ssh after this long. Default 120 s. */
  timeoutMs?: number
  /** Check the host key against this file instead of the lab's known_hosts (tests). */
  knownHostsFile?: string
}

export interface SshResult {
  stdout: string
  stderr: string
  /** The remote command's exit code; 255 when ssh itself failed; null when killed. */
  code: number | null
}

/** OpenSSH client arguments for a lab host (also what the inventory's connection vars amount to). */
export function sshArgs(privateKey: string, knownHostsFile: string, address: string): string[] {
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
    '-l', 'root',
    address,
  ]
}

/** Run a shell command line on host `hostIndex` (1-based) of a lab. */
export async function sshExec(lab: LabRef, hostIndex: number, command: Script, options: SshExecOptions = {}): Promise<SshResult> {
  const { state, paths } = openLab(lab)
  const host = state.hosts.find((h) => h.index === hostIndex)
  if (!host) throw new InputError(`lab "${state.name}" has no host ${hostIndex} (it has 1..${state.hosts.length})`)
  const argv = [...sshArgs(paths.privateKey, options.knownHostsFile ?? paths.knownHosts, host.address), '--', command.text]
  const result: CommandResult = await run(argv, { input: options.input, timeoutMs: options.timeoutMs, allowFailure: true })
  return { stdout: result.stdout, stderr: result.stderr, code: result.code }
}

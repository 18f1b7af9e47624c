// Named SSH and remote-command failures. Callers branch on the class, not on
// stderr text; each carries the host and advice an operator can act on.
import { ExitCode, RescueError } from '../errors.ts'

export class SshError extends RescueError {
  constructor(
    readonly host: string,
    message: string,
    hint?: string,
    cause?: unknown,
  ) {
    super(message, { where: host, hint, cause, exitCode: ExitCode.PREFLIGHT })
  }
}

export class HostKeyUnknownError extends SshError {}
export class HostKeyMismatchError extends SshError {}
export class AuthError extends SshError {}
export class ConnectError extends SshError {}

/** A remote command that exited non-zero: everything needed to understand it. */
export class RemoteCommandError extends RescueError {
  constructor(
    readonly host: string,
    readonly command: string,
    readonly code: number | null,
    readonly signal: string | undefined,
    readonly stdout: string,
    readonly stderr: string,
    hint?: string,
  ) {
    const how = signal ? `killed by ${signal}` : `exit code ${code}`
    const excerpt = tail(stderr || stdout, 8)
    super(`${describe(command)} failed (${how})${excerpt ? `:\n${indent(excerpt)}` : ''}`, {
      where: host,
      hint: hint ?? adviceFor(stderr),
    })
  }
}

/** Known remote failures and what to do about them. */
const ADVICE: Array<[RegExp, string]> = [
  [/incorrect password attempt|Sorry, try again/, 'sudo refused the become password given with -K on this host.'],
  [/sudo: (a )?password is required|sudo: a terminal is required/, 'sudo on this host wants a password: pass -K (--ask-become-pass) to be asked for it once, or give this user passwordless sudo (NOPASSWD).'],
  [/No space left on device/, 'Free space on this host (the snapshot and the restored data both need room next to the data dir).'],
  [/data-dir ".*" exists|data-dir .* exists/, 'A restore target already exists; etcd-rescue restores into a fresh temporary directory, so this is a leftover: move it aside and run again.'],
  [/snapshot missing hash but --skip-hash-check=false/, 'This file has no integrity trailer (a raw member/snap/db copy): pass --skip-hash-check if you trust it.'],
  [/expected sha256/, 'The snapshot on this host is corrupt: etcd-rescue will copy it again on the next run.'],
  [/Permission denied/, 'The SSH user lacks permission here: set ansible_become=true (passwordless sudo) or connect as root.'],
]

export function adviceFor(stderr: string): string | undefined {
  return ADVICE.find(([re]) => re.test(stderr))?.[1]
}

function tail(text: string, lines: number): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n')
}

function indent(text: string): string {
  return text.split('\n').map((l) => `    ${l}`).join('\n')
}

/** Long generated scripts are summarized by their first line. */
function describe(command: string): string {
  const first = command.trim().split('\n')[0]
  return first.length > 120 || command.includes('\n') ? `remote script "${first.slice(0, 100)}…"` : `"${first}"`
}

// The grammar of every value etcd-rescue uses in a path or a command, whether
// the operator typed it or a host printed it. A host is not trusted: what it
// reports (a token in its state file, a PID, a binary's path) is held to the
// same rules as a flag before it reaches a script, and a value that breaks them
// stops the run with the host and the file named, before anything changes.
import { ExitCode, RescueError } from '../errors.ts'

/** --initial-cluster-token: what etcd-rescue makes and what --token accepts. */
export const TOKEN_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/
export const SHA256_RE = /^[0-9a-f]{64}$/

/** An absolute path with no control characters and no `..` step. */
export function isSafeAbsolutePath(p: string): boolean {
  // eslint-disable-next-line no-control-regex
  return p.startsWith('/') && !/[\x00-\x1f\x7f]/.test(p) && !p.split('/').includes('..') && p.length <= 4096
}

export function isPid(n: number): boolean {
  return Number.isInteger(n) && n > 1 && n < 2 ** 22 + 1
}

/** Something a host reported that does not parse: refused before any change (exit 3). */
export class HostDataError extends RescueError {
  constructor(host: string, what: string, value: string, hint?: string) {
    super(`${what} does not parse: ${JSON.stringify(value.slice(0, 200))}`, {
      where: host,
      exitCode: ExitCode.PREFLIGHT,
      hint: hint ?? 'etcd-rescue uses nothing a host reports unless it parses. Look at that host: was the file edited by hand, or is it from another tool?',
    })
  }
}

/** One line of a member's state file (the journal of what etcd-rescue did there). */
export type StateLine =
  | { kind: 'aside'; path: string }
  | { kind: 'verified'; sha256: string; fileId: string }
  | { kind: 'restored' | 'complete'; sha256: string; token: string }

export function parseStateLine(line: string): StateLine | undefined {
  const aside = /^aside (\/.*)$/.exec(line)
  if (aside && isSafeAbsolutePath(aside[1])) return { kind: 'aside', path: aside[1] }
  const v = /^verified ([0-9a-f]{64}) (\d{1,15}:\d{1,20}:\d{1,12}(?:\.\d{1,9})?)$/.exec(line)
  if (v) return { kind: 'verified', sha256: v[1], fileId: v[2] }
  const m = /^(restored|complete) (\S+) (\S+)$/.exec(line)
  if (m && SHA256_RE.test(m[2]) && TOKEN_RE.test(m[3])) return { kind: m[1] as 'restored' | 'complete', sha256: m[2], token: m[3] }
  return undefined
}

/**
 * The state file's lines, each checked; the last `restored` not followed by a
 * `complete` is an interrupted run this one can finish.
 */
export function parseStateFile(lines: string[], host: string, file: string): { lines: StateLine[]; restored?: { sha256: string; token: string } } {
  const parsed: StateLine[] = []
  for (const [i, line] of lines.entries()) {
    if (line === '') continue
    const p = parseStateLine(line)
    if (!p) throw new HostDataError(host, `${file} line ${i + 1}`, line, `This state file is etcd-rescue's journal on that host. Move it aside (do not delete the data dirs it names) and run again.`)
    parsed.push(p)
  }
  const last = [...parsed].reverse().find((l) => l.kind === 'restored' || l.kind === 'complete')
  return { lines: parsed, restored: last?.kind === 'restored' ? { sha256: last.sha256, token: last.token } : undefined }
}

// One persistent session per host: a small POSIX sh loop, started once over SSH
// (one login shell on the host for the whole run), that runs each later step as a
// message on its stdin instead of a new SSH exec. Mitogen does this for Ansible;
// on hosts whose login shell is slow (profile scripts, version-manager hooks) each
// exec we do not start saves its cost.
//
// Protocol, one line per step on the loop's stdin:
//   step ID BASE64-OF-SCRIPT
// The loop decodes the script into a private temp dir, runs it with `sh` in a
// process group of its own (setsid), stdin from /dev/null, fd 9 (the lock) closed,
// and answers on stdout:
//   etcd-rescue-started ID PGID          (so a timeout can end the step's group)
//   etcd-rescue-step ID RC OUTBYTES ERRBYTES
// followed by exactly OUTBYTES of the step's stdout and ERRBYTES of its stderr.
// A line `release` (or EOF: the connection is gone) ends the loop.
import { sh, type Script } from '../shell/sh.ts'
import { RemoteCommandError, SshError } from './errors.ts'
import type { ExecResult } from './connection.ts'

// Written out literally in sessionLoop's text too.
const STARTED = 'etcd-rescue-started'
const DONE = 'etcd-rescue-step'

/**
 * The loop, to run after whatever prologue the caller needs (the lock). Each step
 * runs under `sh` with nothing of the loop's own state: a fresh process, its own
 * process group, stdin /dev/null and fd 9 closed (a started etcd must not inherit
 * the lock). Steps' output goes to files first, so the answer can give its length.
 */
export function sessionLoop(onRelease: Script = sh``): Script {
  return sh`command -v setsid >/dev/null 2>&1 && command -v base64 >/dev/null 2>&1 || { echo "setsid or base64 not found (util-linux, coreutils)" >&2; exit 69; }
T=$(mktemp -d "\${TMPDIR:-/tmp}/etcd-rescue-session.XXXXXX") || exit 70
trap 'rm -rf "$T"' EXIT
trap 'exit 129' HUP
trap 'exit 143' TERM
while IFS= read -r line; do
  case $line in
    release)
      ${onRelease}
      break ;;
    'step '*)
      id=\${line#step }; code=\${id#* }; id=\${id%% *}
      if printf '%s' "$code" | base64 -d > "$T/s" 2>/dev/null; then
        setsid sh "$T/s" </dev/null >"$T/o" 2>"$T/e" 9>&- &
        echo "etcd-rescue-started $id $!"
        wait $!; rc=$?
      else
        rc=70; : > "$T/o"; echo "the step's script did not decode" > "$T/e"
      fi
      echo "etcd-rescue-step $id $rc $(wc -c < "$T/o") $(wc -c < "$T/e")"
      cat "$T/o" "$T/e"
      rm -f "$T/s" "$T/o" "$T/e" ;;
  esac
done
exit 0`
}

export interface StepOptions {
  /** Do not throw on a non-zero exit; the caller reads `code`. Default false. */
  allowFailure?: boolean
  /** From the step's start on the host: end its process group (TERM, then KILL) and reject. Default: no limit. */
  timeoutMs?: number
}

interface Pending {
  id: number
  script: Script
  options: StepOptions
  resolve: (r: ExecResult) => void
  reject: (e: unknown) => void
  timer?: NodeJS.Timeout
  settled: boolean
}

/**
 * The operator's side of the loop: sends steps, reads answers from the byte stream
 * (a step's output may be anything, so it is counted in bytes, never split on lines).
 * Steps run one at a time on the host, in the order sent.
 */
export class StepSession {
  /** Steps sent on this session: each is one round trip to the host, and no new process of sshd's. */
  steps = 0
  private nextId = 1
  private readonly pending: Pending[] = []
  private buf: Buffer = Buffer.alloc(0)
  private frame?: { id: number; rc: number; out: number; err: number }
  private ended?: string

  constructor(
    private readonly hostName: string,
    private readonly write: (line: string) => void,
    /** Ends a timed-out step's process group on the host (a separate exec: the loop is busy waiting for it). */
    private readonly killGroup: (pgid: number) => void,
  ) {}

  run(script: Script, options: StepOptions = {}): Promise<ExecResult> {
    if (this.ended) return Promise.reject(new SshError(this.hostName, `cannot run a step: ${this.ended}`))
    const id = this.nextId++
    this.steps++
    return new Promise<ExecResult>((resolve, reject) => {
      this.pending.push({ id, script, options, resolve, reject, settled: false })
      this.write(`step ${id} ${Buffer.from(script.text).toString('base64')}\n`)
    })
  }

  /** Bytes of the loop's stdout, as they come. */
  data(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk
    for (;;) {
      if (this.frame) {
        const need = this.frame.out + this.frame.err
        if (this.buf.length < need) return
        const f = this.frame
        const stdout = this.buf.subarray(0, f.out).toString()
        const stderr = this.buf.subarray(f.out, need).toString()
        this.buf = this.buf.subarray(need)
        this.frame = undefined
        this.finish(f.id, f.rc, stdout, stderr)
        continue
      }
      const nl = this.buf.indexOf(10)
      if (nl < 0) return
      const line = this.buf.subarray(0, nl).toString()
      this.buf = this.buf.subarray(nl + 1)
      const started = new RegExp(`^${STARTED} (\\d+) (\\d+)$`).exec(line)
      if (started) {
        this.onStarted(Number(started[1]), Number(started[2]))
        continue
      }
      const done = new RegExp(`^${DONE} (\\d+) (\\d+) (\\d+) (\\d+)$`).exec(line)
      if (done) this.frame = { id: Number(done[1]), rc: Number(done[2]), out: Number(done[3]), err: Number(done[4]) }
      // Anything else (a profile script's chatter) is not ours.
    }
  }

  /** The loop is gone (connection lost, loop ended): every step still waiting fails. */
  end(why: string): void {
    this.ended = why
    for (const p of this.pending.splice(0)) this.settle(p, () => p.reject(new SshError(this.hostName, `the step did not finish: ${why}`)))
  }

  private onStarted(id: number, pgid: number): void {
    const p = this.pending.find((x) => x.id === id)
    if (!p?.options.timeoutMs || p.settled) return
    p.timer = setTimeout(() => {
      this.settle(p, () => p.reject(new RemoteCommandError(this.hostName, p.script.text, null, 'TIMEOUT', '', `no answer within ${p.options.timeoutMs! / 1000} s; its process group ${pgid} was sent TERM, then KILL`)))
      if (pgid > 1) this.killGroup(pgid)
    }, p.options.timeoutMs)
  }

  private finish(id: number, rc: number, stdout: string, stderr: string): void {
    const i = this.pending.findIndex((x) => x.id === id)
    if (i < 0) return
    const [p] = this.pending.splice(i, 1)
    const r: ExecResult = { code: rc, stdout, stderr }
    if (rc !== 0 && !p.options.allowFailure) this.settle(p, () => p.reject(new RemoteCommandError(this.hostName, p.script.text, rc, undefined, stdout, stderr)))
    else this.settle(p, () => p.resolve(r))
  }

  private settle(p: Pending, how: () => void): void {
    clearTimeout(p.timer)
    if (p.settled) return
    p.settled = true
    how()
  }
}

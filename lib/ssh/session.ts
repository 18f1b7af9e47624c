// One persistent session per host: a small POSIX sh loop, started once over SSH
// (one login shell on the host for the whole run), that runs each later step as a
// message on its stdin instead of a new SSH exec; the snapshot itself comes over
// the same channel. Mitogen does this for Ansible; on hosts whose login shell is
// slow (profile scripts, version-manager hooks) each exec not started saves its cost.
//
// Protocol, one line per message on the loop's stdin:
//   step ID BASE64-OF-SCRIPT     run a script (after `then` has been answered)
//   quick ID BASE64-OF-SCRIPT    the same, without waiting for `then` (read-only checks)
//   recv ID BYTES BASE64         the next BYTES on stdin are the script's stdin: a
//                                file received while `then` still runs
//   recvs ID BASE64              the same for a stream of unknown length (a file
//                                compressed on the way): frames follow, each a
//                                line with its length, then that many bytes; a
//                                frame of length 0 ends it
//   release                      the end (EOF, a lost connection, ends it too)
// A step runs with `sh` in a process group of its own (setsid), stdin /dev/null,
// the lock's fd 9 closed, and is answered on stdout:
//   etcd-rescue-started ID PGID          (so a timeout can end the step's group)
//   etcd-rescue-step ID RC OUTBYTES ERRBYTES
// followed by exactly OUTBYTES of its stdout and ERRBYTES of its stderr. `then`
// (the caller's first script, e.g. preflight's probe) runs in the background from
// the start and is answered as step 0 as soon as it ends. Every write to stdout
// holds a lock (flock), so answers never interleave.
import { sh, type Script } from '../shell/sh.ts'
import { RemoteCommandError, SshError } from './errors.ts'
import type { ExecResult } from './connection.ts'

// Written out literally in sessionLoop's text too.
const STARTED = 'etcd-rescue-started'
const DONE = 'etcd-rescue-step'
/** The loop's first line: what it can do (recv needs a dd(1) or head(1) that reads exactly N bytes from a pipe: GNU's). */
const HELLO = 'etcd-rescue-session'

/**
 * The loop, to run after whatever prologue the caller needs (the lock). Each step
 * runs under `sh` with nothing of the loop's own state: a fresh process, its own
 * process group, stdin /dev/null and fds 3 and 9 closed (a started etcd must not
 * inherit the lock). Output goes to files first, so the answer can give its length.
 */
export function sessionLoop(o: { then?: Script; onRelease?: Script } = {}): Script {
  const then = o.then ?? sh`:`
  return sh`for tool in setsid base64 flock; do command -v "$tool" >/dev/null 2>&1 || { echo "$tool not found (util-linux, coreutils)" >&2; exit 69; }; done
T=$(mktemp -d "\${TMPDIR:-/tmp}/etcd-rescue-session.XXXXXX") || exit 70
trap 'rm -rf "$T"' EXIT
trap 'exit 129' HUP
trap 'exit 143' TERM
exec 3<&0
# A file's bytes are read from the stream exactly, never one more: GNU dd in 128 KiB
# blocks (a 132 MiB file in 1056 reads) when it takes these options (coreutils 8.4's
# does not), else GNU head (8 KiB reads), else no recv.
recv=0
if dd --version 2>/dev/null | grep -q coreutils && [ "$(printf abc | dd bs=128K iflag=count_bytes,fullblock count=2 status=none 2>/dev/null)" = ab ]; then
  recv=1; take() { dd bs=128K iflag=count_bytes,fullblock count="$1" status=none <&3; }
elif head --version 2>/dev/null | grep -q coreutils; then
  recv=1; take() { head -c "$1" <&3; }
fi
echo "etcd-rescue-session recv=$recv"
# Every write to stdout holds this lock: \`then\` answers from the background when it ends.
say() {
  ( flock 8; printf '%s\n' "$1"; [ -z "$2" ] || cat "$T/$2.o" "$T/$2.e" ) 8>>"$T/lock"
}
answer() {
  say "etcd-rescue-step $1 $2 $(wc -c < "$T/$1.o") $(wc -c < "$T/$1.e")" "$1"
  rm -f "$T/$1.o" "$T/$1.e" "$T/$1.s"
}
(
  ( ${then}
  ) </dev/null >"$T/0.o" 2>"$T/0.e"
  answer 0 $?
) </dev/null 3<&- 9>&- &
then_pid=$!
wait_then() {
  [ -z "$then_pid" ] || wait "$then_pid"
  then_pid=
}
# A stream's frames, to stdout: each a length line (read byte by byte, never past
# it), then exactly that many bytes; length 0 ends the stream. It runs in a
# pipeline's subshell: a header that is not a length is told by a file.
frames() {
  while IFS= read -r n <&3; do
    case $n in ''|*[!0-9]*) : > "$T/bad-frame"; return 1 ;; 0) return 0 ;; esac
    take "$n" 9>&- || { : > "$T/bad-frame"; return 1; }
  done
  : > "$T/bad-frame"; return 1
}
decode() {
  printf '%s' "$2" | base64 -d > "$T/$1.s" 2>/dev/null && return 0
  : > "$T/$1.o"; echo "the step's script did not decode" > "$T/$1.e"; return 1
}
while IFS= read -r line; do
  set -f; set -- $line; set +f
  case $1 in
    release)
      wait_then
      ${o.onRelease ?? sh`:`}
      break ;;
    step|quick)
      [ "$1" = quick ] || wait_then
      id=$2
      if decode "$id" "$3"; then
        setsid sh "$T/$id.s" </dev/null >"$T/$id.o" 2>"$T/$id.e" 3<&- 9>&- &
        say "etcd-rescue-started $id $!"
        wait $!; answer "$id" $?
      else answer "$id" 70; fi ;;
    recvs)
      id=$2
      if decode "$id" "$3"; then
        frames | sh "$T/$id.s" >"$T/$id.o" 2>"$T/$id.e" 9>&-
        answer "$id" $?
      else
        frames >/dev/null; answer "$id" 70
      fi
      [ ! -e "$T/bad-frame" ] || { wait_then; exit 71; } ;;
    recv)
      id=$2; n=$3
      if decode "$id" "$4"; then
        { take "$n" 9>&- || : > "$T/bad-frame"; } | sh "$T/$id.s" >"$T/$id.o" 2>"$T/$id.e" 9>&-
        answer "$id" $?
      else
        take "$n" >/dev/null 9>&- || : > "$T/bad-frame"; answer "$id" 70
      fi
      # A file not read to its end (its script quit early, a read failed): what
      # follows on stdin is the rest of its bytes, never to be read as messages.
      # \`then\` still answers first.
      [ ! -e "$T/bad-frame" ] || { wait_then; exit 71; } ;;
  esac
done
exit 0`
}

export interface StepOptions {
  /** Do not throw on a non-zero exit; the caller reads `code`. Default false. */
  allowFailure?: boolean
  /** From the step's start on the host: end its process group (TERM, then KILL) and reject. Default: no limit. */
  timeoutMs?: number
  /** Do not wait for `then` (the loop's first script) to finish first: for read-only checks. */
  quick?: boolean
}

interface Pending {
  id: number
  script?: Script
  options: StepOptions
  resolve: (r: ExecResult) => void
  reject: (e: unknown) => void
  timer?: NodeJS.Timeout
  settled: boolean
  /** The host said it started the step. */
  began?: boolean
  /** What kind of message it was (a received file answers only at its end). */
  kind: 'then' | 'step' | 'quick' | 'recv'
  /** When its message was handed to the channel. */
  sentAt?: number
}

export const SESSION_LIMITS = {
  /**
   * From the moment the loop is free to start a step (every earlier message answered,
   * and `then` for a step that waits for it) to its "started": a few builtins, a
   * base64 and a write in the loop's temp dir. A loop that says nothing for this
   * long is stuck outside any step (a hung /tmp or $TMPDIR): the session ends.
   */
  stepStartWithinMs: 60_000,
  /**
   * From a timed-out step's end (its process group sent TERM, then KILL 2 s later,
   * by a command of its own) to its answer. A step not answered by then is stuck
   * where no signal reaches it (a process in uninterruptible sleep on a hung disk),
   * and the loop waits for it for ever: the session ends, so each later step fails
   * at once, saying why, instead of waiting behind it. The command that sends the
   * signals is waited for as long first.
   */
  killedStepExitWithinMs: 30_000,
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
  /** Writes to the loop's stdin, one message (and a received file's bytes) at a time. */
  private writing: Promise<void> = Promise.resolve()
  /** Set once the loop said hello: whether it can receive files (recv). */
  canReceive?: boolean
  private hello!: () => void
  /** Resolves when the loop has started and said what it can do. */
  readonly ready = new Promise<void>((r) => { this.hello = r })

  constructor(
    private readonly hostName: string,
    private readonly write: (line: string) => void,
    /**
     * Ends a timed-out step's process group on the host (a separate exec: the loop
     * is busy waiting for it); settles once TERM and KILL were sent, or it failed.
     */
    private readonly killGroup: (pgid: number) => Promise<void> | void,
  ) {
    // Waited for from the start: `then` may answer in the same chunk as the hello,
    // before anyone asks for it, and an answer nobody waits for is dropped.
    this.thenAnswer = this.expect(0, undefined, { allowFailure: true }, 'then')
    this.startWatch = setInterval(() => this.checkStarts(), Math.min(1000, Math.max(10, SESSION_LIMITS.stepStartWithinMs / 4)))
    this.startWatch.unref()
  }

  private readonly startWatch: NodeJS.Timeout
  /** When the loop last answered a message (or `then`): from then on it is free for the next one. */
  private lastAnswerAt = Date.now()
  private thenAnsweredAt?: number

  /**
   * The message the loop is on is the first one not yet answered. A step there that
   * has not said it started, though the loop has been free to start it for longer
   * than the limit, means the loop is stuck outside any step: the session ends, and
   * every step waiting on it fails, saying so. A received file is bounded by the
   * copy's own watch; a step that started, by its own timeout.
   */
  private checkStarts(): void {
    if (this.ended) return
    // The first message not answered is the one the loop is on. One that timed out (settled, its
    // group being ended) holds the loop until its answer comes: the next is not judged meanwhile.
    const first = this.pending.find((p) => p.kind !== 'then')
    // Before the loop's hello its setup is what runs, bounded by helloWithin.
    if (!first || first.settled || first.began || first.kind === 'recv' || first.sentAt === undefined || this.canReceive === undefined) return
    // A step waits for `then`, which preflight's own limit bounds.
    if (first.kind === 'step' && this.thenAnsweredAt === undefined) return
    const free = Math.max(first.sentAt, this.lastAnswerAt, first.kind === 'step' ? this.thenAnsweredAt! : 0)
    const limit = SESSION_LIMITS.stepStartWithinMs
    if (Date.now() - free < limit) return
    this.end(`the host did not start the step within ${limit / 1000} s of being free to: its session loop is stuck outside any step (a hung /tmp or $TMPDIR?)`)
  }

  private readonly thenAnswer: Promise<ExecResult>
  private helloTimer?: NodeJS.Timeout

  /**
   * Ends the session if the loop has not said hello within `ms` (from now): a loop
   * whose setup hangs (a /tmp on a hung disk) would leave every step waiting forever.
   */
  helloWithin(ms: number): void {
    if (this.canReceive !== undefined || this.ended) return
    this.helloTimer = setTimeout(() => {
      if (this.canReceive === undefined) this.end(`the session loop on the host did not start within ${ms / 1000} s (its setup hangs: mktemp in $TMPDIR or /tmp, or a tool it checks)`)
    }, ms)
    this.helloTimer.unref()
  }

  /** The answer to `then`, the script the loop started with (step 0). */
  then(): Promise<ExecResult> {
    return this.thenAnswer
  }

  /** Runs a step; `quick` ones do not wait for `then` to finish first (read-only checks). */
  run(script: Script, options: StepOptions = {}): Promise<ExecResult> {
    if (this.ended) return Promise.reject(new SshError(this.hostName, `cannot run a step: ${this.ended}`))
    const id = this.nextId++
    this.steps++
    const answer = this.expect(id, script, options, options.quick ? 'quick' : 'step')
    this.enqueue(async () => {
      this.write(`${options.quick ? 'quick' : 'step'} ${id} ${b64(script)}\n`)
      this.sent(id)
    })
    return answer
  }

  /**
   * Runs `script` with `bytes` bytes that `feed` writes (through `write`, honouring
   * its backpressure) as its stdin. No other message goes in between: the loop
   * reads exactly that many bytes. `then` runs on meanwhile. With 'frames', the
   * length is not known first: `feed` writes frames (frame()), then frame(end).
   * A script must read all of its stdin: one that quits early ends the session.
   */
  receive(script: Script, bytes: number | 'frames', feed: () => Promise<void>): Promise<ExecResult> {
    if (this.ended) return Promise.reject(new SshError(this.hostName, `cannot receive: ${this.ended}`))
    const id = this.nextId++
    this.steps++
    const answer = this.expect(id, script, {}, 'recv')
    this.enqueue(async () => {
      this.write(bytes === 'frames' ? `recvs ${id} ${b64(script)}\n` : `recv ${id} ${bytes} ${b64(script)}\n`)
      this.sent(id)
      await feed()
    })
    return answer
  }

  private expect(id: number, script: Script | undefined, options: StepOptions, kind: Pending['kind']): Promise<ExecResult> {
    const p = new Promise<ExecResult>((resolve, reject) => {
      this.pending.push({ id, script, options, resolve, reject, settled: false, kind })
    })
    p.catch(() => {})
    return p
  }

  private sent(id: number): void {
    const p = this.pending.find((x) => x.id === id)
    if (p) p.sentAt = Date.now()
  }

  private enqueue(w: () => Promise<void>): void {
    this.writing = this.writing.then(() => (this.ended ? undefined : w())).catch((err) => this.end(`writing to the session failed: ${(err as Error).message}`))
  }

  get closed(): boolean {
    return this.ended !== undefined
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
      const hello = new RegExp(`^${HELLO} recv=([01])$`).exec(line)
      if (hello) {
        this.canReceive = hello[1] === '1'
        this.lastAnswerAt = Date.now()
        clearTimeout(this.helloTimer)
        this.hello()
        continue
      }
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
    clearTimeout(this.helloTimer)
    clearInterval(this.startWatch)
    this.hello()
    for (const p of this.pending.splice(0)) {
      const began = p.began ? 'the host had started it' : 'the host never said it started, so it may not have run'
      this.settle(p, () => p.reject(new SshError(this.hostName, `the step did not finish (${began}): ${why}`)))
    }
  }

  private onStarted(id: number, pgid: number): void {
    const p = this.pending.find((x) => x.id === id)
    if (p) p.began = true
    if (!p?.options.timeoutMs || p.settled) return
    p.timer = setTimeout(() => {
      const given = p.options.timeoutMs! / 1000
      this.settle(p, () => p.reject(new RemoteCommandError(this.hostName, p.script?.text ?? '', null, 'TIMEOUT', '', `no answer within ${given} s; its process group ${pgid} is being ended (TERM, then KILL)`)))
      // The loop goes on once the step exits. One that never does would hold every later
      // step: the session ends then, saying which of the two it was.
      const limit = SESSION_LIMITS.killedStepExitWithinMs
      const after = (ms: number) => new Promise<'late'>((r) => setTimeout(() => r('late'), ms).unref())
      const killed = pgid > 1 ? Promise.resolve(this.killGroup(pgid)).then(() => 'sent' as const, () => 'failed' as const) : Promise.resolve('none' as const)
      void Promise.race([killed, after(limit)]).then(async (how) => {
        await after(limit)
        if (!this.pending.includes(p) || this.ended) return
        const why = how === 'sent'
          ? `had still not exited ${limit / 1000} s after its process group was sent TERM and KILL: part of it is stuck where no signal reaches (a hung disk?)`
          : how === 'none'
            ? `had still not exited ${limit / 1000} s later`
            : `had still not exited, and the command sent to end its process group ${how === 'late' ? `did not finish within ${limit / 1000} s` : 'failed'} (the host may start no new command either)`
        this.end(`a step given up after ${given} s ${why}; the session can run nothing more`)
      })
    }, p.options.timeoutMs)
  }

  private finish(id: number, rc: number, stdout: string, stderr: string): void {
    this.lastAnswerAt = Date.now()
    if (id === 0) this.thenAnsweredAt = this.lastAnswerAt
    const i = this.pending.findIndex((x) => x.id === id)
    if (i < 0) return
    const [p] = this.pending.splice(i, 1)
    const r: ExecResult = { code: rc, stdout, stderr }
    if (rc !== 0 && !p.options.allowFailure) this.settle(p, () => p.reject(new RemoteCommandError(this.hostName, p.script?.text ?? '', rc, undefined, stdout, stderr)))
    else this.settle(p, () => p.resolve(r))
  }

  private settle(p: Pending, how: () => void): void {
    clearTimeout(p.timer)
    if (p.settled) return
    p.settled = true
    how()
  }
}

/** The line that starts a frame of `length` bytes. */
export function frameHeader(length: number): Buffer {
  return Buffer.from(`${length}\n`)
}

/** One frame of a received stream (receive(…, 'frames', …)): its length line, then its bytes. An empty one ends the stream. */
export function frame(bytes: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([frameHeader(bytes.length), bytes])
}

const b64 = (script: Script) => Buffer.from(script.text).toString('base64')

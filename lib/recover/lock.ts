// One run at a time per member. The lock is a flock(1) held by a small process
// on the member's host for as long as this run's SSH channel to it stays open:
// when the run ends, or its operator's laptop drops and sshd closes the session,
// the lock goes with it. Nobody has to guess whether a holder is still alive:
// the kernel knows. The lock file also says who holds it (host, PID, start time,
// command line), so a second run can say who it waits for; a holder that went
// away without releasing (its connection dropped mid-run) leaves that line
// behind, and the next run takes the lock over with a warning naming it.
//
// The file lives in /run/lock (tmpfs: gone at reboot, like every process that
// could hold it), not in the work dir: a run refused at preflight must leave the
// data dir's parent exactly as it found it.
import { createHash } from 'node:crypto'
import { hostname } from 'node:os'
import { ExitCode, RescueError } from '../errors.ts'
import type { SshHost } from '../ssh/connection.ts'
import { adviceFor } from '../ssh/errors.ts'
import { sh, type Script } from '../shell/sh.ts'
import { sessionLoop, StepSession, type StepOptions } from '../ssh/session.ts'
import type { ExecResult } from '../ssh/connection.ts'
import { settledWithin } from '../task/wait.ts'
import type { ClientChannel } from 'ssh2'

/** Exit code of the lock script when another run holds the lock. */
const HELD = 75

export class LockHeldError extends RescueError {
  constructor(host: string, readonly holder: string, waitedSeconds: number) {
    super(`another etcd-rescue run holds this member's lock${waitedSeconds ? ` (waited ${waitedSeconds} s)` : ''}: ${holder || 'holder unknown'}`, {
      where: host,
      exitCode: ExitCode.PREFLIGHT,
      hint: 'Let that run finish (or stop it), or wait for it with --wait-lock SECONDS. If its operator is gone, the lock is released when the host notices its SSH session is dead.',
    })
  }
}

/** Lock file of a member: one per data dir on a host. */
export function lockFile(dataDir: string): string {
  return `etcd-rescue-${createHash('sha256').update(dataDir).digest('hex').slice(0, 16)}.lock`
}

export function ownerLine(argv: readonly string[] = process.argv, now = new Date()): string {
  const cmd = argv.slice(1).join(' ').replace(/[\x00-\x1f\x7f]/g, ' ').slice(0, 300)
  return `host=${hostname()} pid=${process.pid} since=${now.toISOString()} cmd=${cmd}`
}

/**
 * Takes the lock and holds it until a line `release` (or EOF) arrives on stdin;
 * meanwhile it runs the steps sent to it (sessionLoop).
 * Prints `held-by=OWNER` when it has to wait, `stale=OWNER` when it takes over
 * from a run that never released, then `locked`. With `takeover`, a lock whose
 * owner line is exactly that is taken from its holder (its processes holding
 * the file are ended): only for a holder this machine knows is gone.
 */
export function lockScript(dataDir: string, owner: string, waitSeconds: number, takeover = '', then?: Script): Script {
  return sh`F=${lockFile(dataDir)}; me=${owner}; wait_s=${waitSeconds}; take=${takeover}
L=/run/lock; { [ -d "$L" ] && [ -w "$L" ]; } || L=/tmp
L="$L/$F"
command -v flock >/dev/null 2>&1 || { echo "flock not found (util-linux): cannot lock this member against a second run" >&2; exit 69; }
exec 9>>"$L"
if ! flock -n 9; then
  # A holder that has just taken the lock writes its name a moment later (and one releasing
  # it clears the name a moment before it lets go): an empty name is read again, up to 2 s.
  h=$(head -n 1 "$L"); n=0
  while [ -z "$h" ] && [ "$n" -lt 20 ]; do sleep 0.1 2>/dev/null || sleep 1; n=$((n + 1)); h=$(head -n 1 "$L"); done
  echo "held-by=$h"
  if [ -n "$take" ] && [ "$(head -n 1 "$L")" = "$take" ]; then
    # Each process holding the file (the holder's session loop), and with it every process it
    # started that stayed in its process group (its file transfer; under sudo the loop leads
    # no group of its own). Its steps run in groups of their own and are never in the list.
    # TERM and CONT (a stopped one gets its TERM), then KILL if the lock is still held.
    targets=$(exec 9>&-
      if find /proc/self/fd -maxdepth 1 -lname x >/dev/null 2>&1; then
        fds=$(find /proc/[0-9]*/fd -maxdepth 1 -lname "$L" 2>/dev/null)
      else
        fds=$(for f in /proc/[0-9]*/fd/*; do [ "$(readlink "$f" 2>/dev/null)" = "$L" ] && echo "$f"; done)
      fi
      # Those whose open file holds the lock (fdinfo's "lock:" line), not another run waiting
      # for it; a kernel that shows no such line: every process that has the file open.
      held=$(for f in $fds; do grep -q '^lock:' "\${f%/fd/*}/fdinfo/\${f##*/}" 2>/dev/null && echo "$f"; done)
      [ -n "$held" ] || held=$fds
      held=$(for f in $held; do f=\${f#/proc/}; echo "\${f%%/*}"; done | tr '\\n' ' ')
      for s in /proc/[0-9]*/stat; do
        read -r st 2>/dev/null < "$s" || continue
        q=\${s#/proc/}; echo "\${q%/stat} \${st##*) }"
      done | awk -v held="$held" -v me="$$" '
        BEGIN { n = split(held, hs, " "); for (i = 1; i <= n; i++) if (hs[i] != "" && hs[i] != me) out[hs[i]] = 1 }
        { pp[$1] = $3; pg[$1] = $4 }
        END {
          for (more = 1; more; ) { more = 0; for (q in pp) if (!(q in out) && (pp[q] in out) && pg[q] == pg[pp[q]] && pg[q] > 1) { out[q] = 1; more = 1 } }
          for (q in out) if (q in pp) print q
        }')
    signal() { for t in $targets; do kill "-$1" "$t"; done 2>/dev/null; }
    # Still that holder's (another run may have taken it meanwhile): then end them.
    if [ "$(head -n 1 "$L")" = "$take" ]; then signal TERM; signal CONT; fi
    flock -w 2 9 || { [ "$(head -n 1 "$L")" = "$take" ] && signal KILL; flock -w 10 9; } || exit ${HELD}
  elif [ "$wait_s" -eq 0 ] || ! flock -w "$wait_s" 9; then exit ${HELD}; fi
fi
prev=$(head -n 1 "$L")
[ -n "$prev" ] && echo "stale=$prev"
printf '%s\\n' "$me" > "$L"
echo locked
# Then this run's steps, each a message on this same session (lib/ssh/session.ts), while
# \`then\` (preflight's probe, in a subshell with stdin closed) runs alongside.
# Released on purpose: clear the owner line. A dropped connection leaves it, for the next run to name.
${sessionLoop({ then, onRelease: sh`: > "$L"` })}`
}

export interface HeldLock {
  /** The host's name. */
  name: string
  /** The owner line written into the lock file. */
  owner: string
  release(): Promise<void>
  /** Output of `then` (run under the lock, in the same remote command), once it finished. */
  thenOutput: Promise<{ stdout: string; code: number }>
  /**
   * Runs a step under the lock, as a message on the lock's own session: no new
   * SSH exec, so no login shell on the host. Steps run one at a time, in order.
   */
  exec(script: Script, options?: StepOptions): Promise<ExecResult>
  /** A TCP connection made from the host, over the same SSH connection. */
  forward: SshHost['forward']
  /** Steps sent on the session so far (round trips that started no process of sshd's). */
  readonly steps: number
  /** The session itself: files go over it too (StepSession.receive). */
  session: StepSession
  /** The session's SSH channel. */
  channel: Promise<ClientChannel>
  /** The session is gone (connection lost, dropped): a step needs a new lock. */
  readonly closed: boolean
  /** Ends the session once \`then\` answered, without releasing (the next lock on this host takes it over). */
  drop(): void
}

export const LOCK_LIMITS = {
  /** From the lock command's exec to its first line: the login shell's start (2 s on a busy host here). */
  startWithinMs: 60_000,
  /** From the lock taken to the session loop's hello: a few builtins and forks, even on a busy host. */
  helloWithinMs: 30_000,
}

/** Owner lines of the locks this process holds now (a run in progress). */
const active = new Set<string>()

/**
 * Whether a holder is a run from this machine that is certainly over: its
 * process is gone, or it is this process and no run of it holds that lock now.
 * Such a lock lingers when the run's connection dropped: the host keeps the
 * session (and the lock) until sshd notices, which without ClientAliveInterval
 * can take hours. Another machine's holder is never judged stale.
 */
export function staleHolder(holder: string): boolean {
  const m = /^host=(\S+) pid=(\d+) since=/.exec(holder)
  if (!m || m[1] !== hostname()) return false
  const pid = Number(m[2])
  if (pid === process.pid) return !active.has(holder)
  try {
    process.kill(pid, 0)
    return false
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH'
  }
}

/**
 * acquireLock, taking over a holder `staleHolder` proves gone (after `onTakeover`
 * is told whose lock it was) instead of waiting hours for the host to notice.
 */
export async function acquireLockOrTakeOver(
  host: SshHost,
  dataDir: string,
  options: Parameters<typeof acquireLock>[2] & { onTakeover?: (holder: string) => void },
): Promise<HeldLock> {
  try {
    return await acquireLock(host, dataDir, options)
  } catch (err) {
    if (!(err instanceof LockHeldError) || !staleHolder(err.holder)) throw err
    options.onTakeover?.(err.holder)
    return acquireLock(host, dataDir, { ...options, takeover: err.holder })
  }
}

/**
 * Locks one member. Resolves once the lock is held; rejects with LockHeldError
 * (exit 3) if another run holds it past `waitSeconds`.
 */
export function acquireLock(
  host: SshHost,
  dataDir: string,
  options: { waitSeconds: number; owner?: string; takeover?: string; onWait?: (holder: string) => void; onStale?: (holder: string) => void; then?: Script; startWithinMs?: number },
): Promise<HeldLock> {
  // Output through onData, not the channel's own 'data' events: with a become
  // password (-K) the first bytes are sudo's, and spawn hands on only what follows.
  let onStdout: (chunk: Buffer) => void = () => {}
  const owner = options.owner ?? ownerLine()
  const script = lockScript(dataDir, owner, options.waitSeconds, options.takeover, options.then)
  const onData = (chunk: Buffer, stream: 'stdout' | 'stderr') => { if (stream === 'stdout') onStdout(chunk) }
  // The login shell startConnecting began for this, if any: its wait is over or under way.
  const { channel, result } = host.takeStandby(script, { onData }) ?? host.spawn(script, { allowFailure: true, onData })
  const session = new StepSession(host.name, (line) => void channel.then((c) => c.write(line)), (pgid) => host.killGroup(pgid))
  return new Promise<HeldLock>((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0)
    let holder = ''
    let locked = false
    let dropped = false
    // The lock script's first line (held-by=, stale=, locked) is due once the login shell has
    // run it; a login shell that hangs (a profile script, a home on a network mount) would
    // otherwise hold the run forever. After that line the script's own flock -w bounds the wait.
    const startWithinMs = options.startWithinMs ?? LOCK_LIMITS.startWithinMs
    const starting = setTimeout(() => {
      const why = `SSH let this run in, but its command did not start within ${startWithinMs / 1000} s: the login shell hangs before running it (a profile script, ~/.bashrc, a home directory on a network mount?)`
      session.end(why)
      void channel.then((c) => c.close(), () => {})
      reject(new RescueError(why, { where: host.name, exitCode: ExitCode.PREFLIGHT, hint: 'See where it waits: ssh to the host by hand and run true; sshd runs every command through the user\'s login shell.' }))
    }, startWithinMs)
    onStdout = (chunk) => {
      if (locked) return session.data(chunk)
      buf = Buffer.concat([buf, chunk])
      let nl: number
      while (!locked && (nl = buf.indexOf(10)) >= 0) {
        const line = buf.subarray(0, nl).toString()
        buf = buf.subarray(nl + 1)
        // The script's own lines, not a profile script's chatter, show it started.
        if (/^(held-by|stale)=|^locked$/.test(line)) clearTimeout(starting)
        if (line.startsWith('held-by=')) {
          holder = line.slice(8)
          options.onWait?.(holder)
        } else if (line.startsWith('stale=')) options.onStale?.(line.slice(6))
        else if (line === 'locked') {
          locked = true
          session.helloWithin(LOCK_LIMITS.helloWithinMs)
          active.add(owner)
          const thenOutput = session.then().then((r) => ({ stdout: r.stdout, code: r.code ?? -1 }), (err) => {
            throw new RescueError(`the lock holder ended before its step finished: ${(err as Error).message}`, { where: host.name, exitCode: ExitCode.PREFLIGHT })
          })
          thenOutput.catch(() => {})
          resolve({
            name: host.name,
            owner,
            thenOutput,
            session,
            channel,
            exec: (script, o) => session.run(script, o),
            forward: (h, p) => host.forward(h, p),
            get steps() {
              return session.steps
            },
            get closed() {
              return dropped || session.closed
            },
            // Bounded: a host that stopped answering must not hold the run's end; closing the connection frees the lock anyway.
            release: async () => {
              active.delete(owner)
              const ch = await channel
              ch.end('release\n')
              await settledWithin(result, 5000)
            },
            // Not before \`then\` answered (preflight's probe runs in this session): a copy cut for a
            // relay must not take the checks down with it. Bounded, as a probe could hang. The
            // session ends here, not when sshd closes the channel: sshd keeps it open for as long
            // as the loop runs, and a loop whose file's writer hangs (a stuck disk) runs on until
            // the next lock on this host ends it.
            drop: () => void (dropped = true, settledWithin(thenOutput, 30_000)
              .then(() => {
                session.end('this run ended its session on the host (cut from the copy)')
                return channel.then((c) => c.close(), () => {})
              })),
          })
        }
      }
      if (locked && buf.length) {
        const rest = buf
        buf = Buffer.alloc(0)
        session.data(rest)
      }
    }
    channel.catch((err) => {
      clearTimeout(starting)
      reject(err)
    })
    result.then((r) => {
      clearTimeout(starting)
      session.end(`the session ended (exit code ${r.code}${r.signal ? `, ${r.signal}` : ''})${r.stderr.trim() ? `: ${r.stderr.trim().split('\n').slice(-2).join(' | ')}` : ''}`)
      if (locked) return
      if (r.code === HELD) reject(new LockHeldError(host.name, holder, options.waitSeconds))
      else reject(new RescueError(`cannot take this member's lock: ${(r.stderr || r.stdout).trim() || `exit code ${r.code}`}`, { where: host.name, exitCode: ExitCode.PREFLIGHT, hint: adviceFor(r.stderr) }))
    }, (err) => {
      clearTimeout(starting)
      session.end(`the connection failed: ${(err as Error).message}`)
      reject(err)
    })
  })
}

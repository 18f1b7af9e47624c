// The persistent session's loop, run by a real local sh (dash, then bash): the
// framing in bytes, exit codes, stderr, a timed-out step's process group ended,
// fd 9 not inherited, and the release. No SSH: the loop reads and writes pipes
// here exactly as it does over an SSH channel.
import { afterEach, describe, expect, it } from 'vitest'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sh } from '../../lib/shell/sh.ts'
import { frame, sessionLoop, SESSION_LIMITS, StepSession } from '../../lib/ssh/session.ts'
import { RemoteCommandError } from '../../lib/ssh/errors.ts'

const shells = ['/bin/dash', '/bin/bash'].filter(existsSync)
const BUSYBOX = '/bin/busybox'
/** GNU dd as coreutils 8.4 (RHEL 6) has it: no count_bytes, no status=none. */
const OLD_DD = `#!/bin/sh
case "$*" in --version) echo 'dd (GNU coreutils) 8.4'; exit 0 ;; *count_bytes*|*status=none*) echo "dd: invalid input flag" >&2; exit 1 ;; esac
exec /bin/dd "$@"
`

/** base64 whose decoding hangs while MARK exists: the loop stuck outside any step, as on a hung /tmp. */
const STUCK_BASE64 = (mark: string) => `#!/bin/sh
if [ "$1" = -d ] && [ -e '${mark}' ]; then exec sleep 600; fi
exec /usr/bin/base64 "$@"
`

/** Runs `body` with one of the session's limits lowered for the test, and puts it back. */
async function withLimit(key: keyof typeof SESSION_LIMITS, ms: number, body: () => Promise<void>): Promise<void> {
  const saved = SESSION_LIMITS[key]
  SESSION_LIMITS[key] = ms
  try {
    await body()
  } finally {
    SESSION_LIMITS[key] = saved
  }
}

describe.each(shells)('sessionLoop under %s', (shell) => {
  let child: ChildProcess | undefined
  let dir: string
  afterEach(() => {
    child?.kill('SIGKILL')
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  /** `shadow`: tools the host's PATH gives as busybox's instead of GNU's (a host without them). */
  function open(onRelease = sh``, then?: ReturnType<typeof sh>, shadow: string[] = [], killer?: (pg: number) => Promise<void>) {
    dir = mkdtempSync(join(tmpdir(), 'session-test-'))
    const lock = join(dir, 'lock')
    const bin = join(dir, 'bin')
    mkdirSync(bin)
    for (const tool of shadow) {
      if (tool === 'old-dd') writeFileSync(join(bin, 'dd'), OLD_DD, { mode: 0o755 })
      else if (tool === 'stuck-base64') writeFileSync(join(bin, 'base64'), STUCK_BASE64(join(dir, 'stuck')), { mode: 0o755 })
      else symlinkSync(BUSYBOX, join(bin, tool))
    }
    // As the lock script does: fd 9 open on the lock file, then the loop.
    child = spawn(shell, ['-c', sh`exec 9>>${lock}
${sessionLoop({ onRelease, then })}`.text], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: dir, PATH: `${bin}:${process.env.PATH}` } })
    const kills: number[] = []
    const session = new StepSession('local', (line) => child!.stdin!.write(line), (pg) => {
      kills.push(pg)
      if (killer) return killer(pg)
      spawnSync('/bin/sh', ['-c', `kill -TERM -${pg}`])
    })
    child.stdout!.on('data', (d: Buffer) => session.data(d))
    const exited = new Promise<number | null>((r) => child!.on('exit', (c) => {
      session.end('exited')
      r(c)
    }))
    return { session, kills, lock, exited }
  }

  it('answers each step with its stdout, stderr and exit code, in order, byte for byte', async () => {
    const { session } = open()
    const [a, b, c] = await Promise.all([
      session.run(sh`echo one; echo err >&2`),
      session.run(sh`printf '%s' ${'no newline at the end'}; exit 3`, { allowFailure: true }),
      // NUL, an invalid byte, blank lines, a two-byte character: counted in bytes, not lines.
      session.run(sh`printf ${'\\000\\377\\n\\n\\303\\251'}`),
    ])
    expect(a).toEqual({ code: 0, stdout: 'one\n', stderr: 'err\n' })
    expect(b).toEqual({ code: 3, stdout: 'no newline at the end', stderr: '' })
    expect(Buffer.from(c.stdout).equals(Buffer.from('\u0000\ufffd\n\né'))).toBe(true)
    expect(session.steps).toBe(3)
  })

  it('answers `then` as step 0 as soon as it ends, with no message sent (a --check run sends none)', async () => {
    const { session } = open(sh``, sh`echo probed; echo warn >&2; exit 4`)
    await session.ready
    expect(session.canReceive).toBe(true)
    expect(await session.then()).toEqual({ code: 4, stdout: 'probed\n', stderr: 'warn\n' })
  })

  // GNU dd reads in 128 KiB blocks; without it (busybox's has no count_bytes), GNU head. Each
  // case hides the other reader behind busybox's, so the one it names is the one that ran.
  it.each([
    ['GNU dd (head is busybox)', ['head'], 70_000],
    ['GNU dd, over two blocks', ['head'], 300_001],
    ['GNU head (dd is busybox)', ['dd'], 70_000],
    ['GNU head (dd is GNU 8.4, without count_bytes)', ['old-dd'], 70_000],
  ])('receives a file of exactly its size while `then` runs, and takes the next message right after it: %s', async (_, shadow, size) => {
    const { session } = open(sh``, sh`sleep 0.3; echo probe-done`, shadow as string[])
    await session.ready
    expect(session.canReceive).toBe(true)
    const bytes = Buffer.concat([Buffer.from('step 99 bogus\n'), Buffer.alloc(size as number, 7), Buffer.from('\nrelease\n')])
    const got = session.receive(sh`f=$(mktemp); cat > "$f"; wc -c < "$f"; sha256sum "$f" | cut -c1-64; rm -f "$f"`, bytes.length, async () => {
      // In two writes, as chunks come from disk.
      child!.stdin!.write(bytes.subarray(0, 1000))
      await new Promise((r) => setTimeout(r, 50))
      child!.stdin!.write(bytes.subarray(1000))
    })
    const after = session.run(sh`echo next`)
    const [r, n, t] = await Promise.all([got, after, session.then()])
    const { createHash } = await import('node:crypto')
    expect(r.stdout).toBe(`${bytes.length}\n${createHash('sha256').update(bytes).digest('hex')}\n`)
    expect(n.stdout).toBe('next\n')
    expect(t.stdout).toBe('probe-done\n')
  })

  // A stream of unknown length (a file compressed on the way) comes in frames; the loop
  // reads each frame's length line and exactly its bytes, whichever reader it has.
  it.each([
    ['GNU dd (head is busybox)', ['head']],
    ['GNU head (dd is busybox)', ['dd']],
  ])('receives a stream in frames, then takes the next message right after its end: %s', async (_, shadow) => {
    const { session } = open(sh``, sh`sleep 0.2; echo probe-done`, shadow as string[])
    await session.ready
    // Frames whose bytes look like messages and length lines, of sizes on both sides of a 128 KiB block.
    const parts = [Buffer.from('step 99 bogus\n12\n'), Buffer.alloc(300_001, 10), Buffer.from('0\nrelease\n'), Buffer.alloc(1, 0)]
    const got = session.receive(sh`f=$(mktemp); cat > "$f"; wc -c < "$f"; sha256sum "$f" | cut -c1-64; rm -f "$f"`, 'frames', async () => {
      for (const p of parts) {
        child!.stdin!.write(frame(p))
        await new Promise((r) => setTimeout(r, 20))
      }
      child!.stdin!.write(frame())
    })
    const after = session.run(sh`echo next`)
    const [r, n, t] = await Promise.all([got, after, session.then()])
    const { createHash } = await import('node:crypto')
    const all = Buffer.concat(parts)
    expect(r.stdout).toBe(`${all.length}\n${createHash('sha256').update(all).digest('hex')}\n`)
    expect(n.stdout).toBe('next\n')
    expect(t.stdout).toBe('probe-done\n')
  })

  // The rest of a file must never be read as messages: a snapshot may hold any bytes.
  it.each([
    ['a file whose script quits before reading it all', (id: string) => `recv ${id} 200000 ${Buffer.from('head -c 10 >/dev/null').toString('base64')}\n`, Buffer.concat([Buffer.alloc(150_000, 65), Buffer.from(`\nstep 50 ${Buffer.from('touch "$TMPDIR/ran"').toString('base64')}\n`), Buffer.alloc(50_000 - 47, 66)])],
    ['a stream whose script quits before reading it all', (id: string) => `recvs ${id} ${Buffer.from('head -c 10 >/dev/null').toString('base64')}\n`, Buffer.concat([frame(Buffer.alloc(200_000, 65)), Buffer.from(`step 50 ${Buffer.from('touch "$TMPDIR/ran"').toString('base64')}\n`), frame()])],
    ['a frame header that is not a length', (id: string) => `recvs ${id} ${Buffer.from('cat >/dev/null').toString('base64')}\n`, Buffer.from(`5\nabcdeXYZ\nstep 50 ${Buffer.from('touch "$TMPDIR/ran"').toString('base64')}\n`)],
  ])('ends the loop (exit 71) instead of reading what is left as messages: %s', async (_, header, body) => {
    const { session, exited } = open()
    await session.ready
    child!.stdin!.write(header('7'))
    child!.stdin!.write(body)
    child!.stdin!.write(`step 51 ${Buffer.from('touch "$TMPDIR/ran"').toString('base64')}\n`)
    expect(await exited).toBe(71)
    expect(existsSync(join(dir, 'ran'))).toBe(false)
  })

  it('receives nothing on a host with neither GNU dd nor GNU head (busybox): the copy goes over its own exec', async () => {
    const { session } = open(sh``, undefined, ['dd', 'head'])
    await session.ready
    expect(session.canReceive).toBe(false)
    expect((await session.run(sh`echo steps-still-run`)).stdout).toBe('steps-still-run\n')
  })

  it('ends itself when the loop, free to start a step, never says it started (stuck outside any step); a step waiting for `then` is not judged so', async () => {
    await withLimit('stepStartWithinMs', 600, async () => {
      // `then` runs 1.5 s: a step waits for it longer than the limit, and is not cut for that.
      const { session } = open(sh``, sh`sleep 1.5`, ['stuck-base64'])
      expect(await session.run(sh`echo after-then`)).toMatchObject({ code: 0, stdout: 'after-then\n' })
      // Now the loop hangs before the next step starts.
      writeFileSync(join(dir, 'stuck'), '')
      const t0 = Date.now()
      const err = await session.run(sh`echo never`).catch((e) => e)
      expect(String(err.message)).toMatch(/the host never said it started, so it may not have run\): the host did not start the step within 0.6 s of being free to: its session loop is stuck outside any step/)
      expect(Date.now() - t0).toBeLessThan(10_000)
      // Its hung decoder is this test's to end.
      spawnSync('/bin/sh', ['-c', `pkill -f 'sleep 600' -P ${child!.pid} ; true`])
    })
  })

  it('does not judge a step queued behind one that timed out but still runs (its group shrugged off TERM)', async () => {
    await withLimit('stepStartWithinMs', 600, async () => {
      const { session } = open()
      const slow = session.run(sh`trap '' TERM; sleep 2.5; echo late`, { timeoutMs: 300 }).catch((e) => e)
      expect(await slow).toBeInstanceOf(RemoteCommandError)
      // Sent once the first was given up on; the loop is still inside it for 2 s more.
      expect(await session.run(sh`echo next`)).toMatchObject({ code: 0, stdout: 'next\n' })
    })
  })

  it('ends itself when a timed-out step never exits (stuck where no signal reaches): the steps behind it fail at once, saying why', async () => {
    await withLimit('killedStepExitWithinMs', 500, async () => {
      const { session, kills } = open()
      // This harness's killGroup sends TERM only: a step that ignores it stands for one in uninterruptible sleep.
      const stuck = session.run(sh`trap '' TERM; sleep 8`, { timeoutMs: 300 }).catch((e) => e)
      expect(await stuck).toBeInstanceOf(RemoteCommandError)
      const t0 = Date.now()
      const err = await session.run(sh`echo next`).catch((e) => e)
      expect(String(err.message)).toMatch(/a step given up after 0.3 s had still not exited 0.5 s after its process group was sent TERM and KILL: .*hung disk/)
      expect(Date.now() - t0).toBeLessThan(5000)
      expect(session.closed).toBe(true)
      // Its group is this test's to end.
      expect(kills).toHaveLength(1)
      spawnSync('/bin/sh', ['-c', `kill -KILL -${kills[0]}; true`])
    })
  })

  it('ends itself, saying so, when the command sent to end a timed-out step\'s group does not come back either', async () => {
    await withLimit('killedStepExitWithinMs', 400, async () => {
      // The kill command never finishes (a host that starts no new command): the step runs on.
      const { session, kills } = open(sh``, undefined, [], () => new Promise<void>(() => {}))
      const stuck = session.run(sh`sleep 8`, { timeoutMs: 300 }).catch((e) => e)
      expect(String((await stuck).message)).toMatch(/no answer within 0.3 s; its process group \d+ is being ended \(TERM, then KILL\)/)
      const err = await session.run(sh`echo next`).catch((e) => e)
      expect(String(err.message)).toMatch(/a step given up after 0.3 s had still not exited, and the command sent to end its process group did not finish within 0.4 s/)
      expect(session.closed).toBe(true)
      spawnSync('/bin/sh', ['-c', `kill -KILL -${kills[0]}; true`])
    })
  })

  it('rejects a failing step unless allowed, with its output', async () => {
    const { session } = open()
    const err = await session.run(sh`echo why >&2; exit 7`).catch((e) => e)
    expect(err).toBeInstanceOf(RemoteCommandError)
    expect(String(err.message)).toMatch(/7/)
    // The session goes on after a failed step.
    expect((await session.run(sh`echo still`)).stdout).toBe('still\n')
  })

  it('ends a timed-out step by its own process group and goes on', async () => {
    const { session, kills } = open()
    const marker = join(dir, 'child-alive')
    // The step starts a grandchild in its group: both must go.
    const err = await session.run(sh`sleep 30 & echo $! > ${marker}; wait`, { timeoutMs: 300 }).catch((e) => e)
    expect(err).toBeInstanceOf(RemoteCommandError)
    expect(kills).toHaveLength(1)
    const pid = Number(readFileSync(marker, 'utf8'))
    for (let i = 0; i < 50 && spawnSync('kill', ['-0', String(pid)]).status === 0; i++) await new Promise((r) => setTimeout(r, 50))
    expect(spawnSync('kill', ['-0', String(pid)]).status).not.toBe(0)
    expect((await session.run(sh`echo next`)).stdout).toBe('next\n')
  })

  it('does not hand the lock (fd 9) to what a step starts', async () => {
    const { session } = open()
    const r = await session.run(sh`[ -e /proc/$$/fd/9 ] && echo inherited || echo closed`)
    expect(r.stdout).toBe('closed\n')
  })

  it('runs the release hook on `release` and exits; later steps are refused', async () => {
    const { session, exited, lock } = open(sh`echo released > "$TMPDIR/released"`)
    writeFileSync(lock, 'owner\n')
    child!.stdin!.write('release\n')
    expect(await exited).toBe(0)
    expect(readFileSync(join(dir, 'released'), 'utf8')).toBe('released\n')
    await expect(session.run(sh`true`)).rejects.toThrow(/exited/)
  })

  it('fails the steps in flight when the loop dies', async () => {
    const { session } = open()
    const began = join(dir, 'began')
    const p = session.run(sh`: > ${began}; sleep 5`)
    // Killed once the step runs (not after a fixed pause: on a loaded machine it may not have started yet).
    for (let i = 0; i < 200 && !existsSync(began); i++) await new Promise((r) => setTimeout(r, 25))
    // The loop says "started" beside the step's own start: a moment for that line to come.
    await new Promise((r) => setTimeout(r, 200))
    child!.kill('SIGKILL')
    await expect(p).rejects.toThrow(/did not finish \(the host had started it\): exited/)
  })
})

describe('StepSession', () => {
  it('keeps the answer of `then` that comes in the same chunk as the hello, before anyone asked for it', async () => {
    const session = new StepSession('local', () => {}, () => {})
    session.data(Buffer.from('etcd-rescue-session recv=1\netcd-rescue-step 0 4 7 5\nprobed\nwarn\n'))
    await session.ready
    expect(await session.then()).toEqual({ code: 4, stdout: 'probed\n', stderr: 'warn\n' })
  })

  it('ends itself when the loop never says hello (its setup hangs on the host): `then` and every step fail, naming why', async () => {
    const session = new StepSession('etcd2', () => {}, () => {})
    session.helloWithin(100)
    const step = session.run(sh`true`)
    await expect(session.then()).rejects.toThrow(/the session loop on the host did not start within 0.1 s/)
    await expect(step).rejects.toThrow(/did not start within 0.1 s/)
    await session.ready
    expect(session.canReceive).toBeUndefined()
    // A loop that does say hello in time is left alone.
    const fine = new StepSession('etcd1', () => {}, () => {})
    fine.helloWithin(100)
    fine.data(Buffer.from('etcd-rescue-session recv=1\n'))
    await new Promise((r) => setTimeout(r, 200))
    expect(fine.closed).toBe(false)
  })
})

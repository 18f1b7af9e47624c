// A copy that failed on one host is tried again (--retries, default 2) after a
// growing pause, over a new connection when the old one died: a link that
// flaps for a few seconds should not end a recovery. Nothing has been stopped
// during the copy, so a host that stays unreachable ends the run with every
// member as it was. A full disk is not retried: waiting does not free space.
import { RescueError } from '../errors.ts'
import { SshHost, type ConnectOptions } from '../ssh/connection.ts'
import { fanOutUpload, type UploadOutcome } from '../ssh/upload.ts'
import { lacksZstd, uploadCompressed } from '../transfer/compress.ts'
import type { MemberPlan } from '../plan/recovery.ts'
import type { HostPool } from '../task/hosts.ts'
import { checkpoint } from '../task/interrupt.ts'

export interface CopyRetryOptions {
  /** Further attempts after the first. */
  retries: number
  /** Pause before retry n (1-based): base × 2^(n-1). Default 1000 ms. */
  backoffMs?: number
  connect: ConnectOptions
  /** Takes the member's lock on a new connection (the old one's lock went with it). */
  relock?: (host: SshHost) => Promise<void>
  /** Before each attempt: takes the lock again if the copy that failed ended its session (a cut). */
  locked?: () => Promise<void>
  signal?: AbortSignal
  /** Status lines for the host's row ("retry 1 of 2 in 1 s: …"). */
  say: (text: string) => void
  /** Bytes sent so far; `zstd`: they are the compressed stream's. */
  onProgress: (bytes: number, t0: number, zstd: boolean) => void
  /** Whether to send it zstd-compressed, as the first copy went (a host without zstd then gets it plain). */
  compress?: () => Promise<boolean>
  /** The snapshot's size (the compressed stream's length is not known first) and hash. */
  size: number
  sha256: string
}

/** The attempt that succeeded: its seconds, whether it went compressed, and the bytes sent (compressed or not). */
export interface CopiedAgain {
  secs: number
  compressed: boolean
  wire: number
  /** The upload script's output (`in-place=` when the first copy had landed after all). */
  stdout: string
}

/**
 * A failure no retry mends, as the error the copy ends with; undefined when a retry
 * may: a full disk (waiting frees no space), or a snapshot on this machine that is no
 * longer the one checked at the start.
 */
function notRetried(last: unknown, m: MemberPlan): RescueError | undefined {
  const d = detail(last)
  if (/changed on this machine during the copy/.test(d)) {
    return new RescueError(`copy failed, not retried: ${d}`, {
      where: m.name, cause: last, hint: 'Something wrote to the snapshot file while this run read it. Put the snapshot back (or take a new one) and run again.',
    })
  }
  if (/No space left on device/.test(d)) {
    return new RescueError(`copy failed, not retried: no space left on device for the snapshot in ${m.paths.work} (the partial file was removed)`, {
      where: m.name, cause: last, hint: (last as { hint?: string }).hint,
    })
  }
  return undefined
}

/** Retries one member's copy after `first` failed; resolves with how the good attempt went. */
export async function copyAgain(first: unknown, m: MemberPlan, file: string, pool: HostPool, o: CopyRetryOptions): Promise<CopiedAgain> {
  let last = first
  for (let attempt = 1; attempt <= o.retries; attempt++) {
    if (notRetried(last, m)) break
    checkpoint(o.signal, 'copy')
    const pause = (o.backoffMs ?? 1000) * 2 ** (attempt - 1)
    o.say(`retry ${attempt} of ${o.retries} in ${pause / 1000} s after: ${brief(last)}`)
    await new Promise((r) => setTimeout(r, pause))
    checkpoint(o.signal, 'copy')
    try {
      const host = await usable(pool, m.name, o.connect, o.relock)
      // Part of the attempt: on a link that just died it fails like the copy would, and is retried.
      await o.locked?.()
      let t0 = Date.now()
      let wire = 0
      // The last attempt goes plain: the compression itself (a host's zstd) may be what fails.
      let zstd = attempt < o.retries && (await o.compress?.().catch(() => false)) === true
      let out: UploadOutcome
      if (zstd) {
        ;[out] = await uploadCompressed(file, o.sha256, o.size, [{ host, paths: m.paths, onProgress: (b) => { wire = b; o.onProgress(b, t0, true) } }])
        // A host without zstd read nothing: it gets the file plain, in this same attempt.
        if (!out.ok && lacksZstd(out.error)) {
          zstd = false
          t0 = Date.now()
        }
      }
      if (!zstd) [out] = await fanOutUpload(file, [{ host, command: m.scripts.upload, onProgress: (b) => { wire = b; o.onProgress(b, t0, false) } }])
      if (out!.ok) return { secs: (Date.now() - t0) / 1000, compressed: zstd, wire, stdout: out!.result.stdout }
      last = out!.error
    } catch (err) {
      last = err
    }
  }
  throw notRetried(last, m) ?? new RescueError(`copy failed, ${o.retries + 1} attempts: ${detail(last)}`, { where: m.name, cause: last, hint: (last as { hint?: string }).hint })
}

/** The pool's connection to a host, replaced by a new one when it died. */
async function usable(pool: HostPool, name: string, connect: ConnectOptions, relock?: (host: SshHost) => Promise<void>): Promise<SshHost> {
  const old = pool.get(name)
  if (!old.closed) return old
  const fresh = await SshHost.connect(old.name, old.target, connect)
  try {
    await relock?.(fresh)
  } catch (err) {
    fresh.close()
    throw err
  }
  old.close()
  pool.hosts.set(name, fresh)
  return fresh
}

function detail(err: unknown): string {
  const e = err as { message?: string; stderr?: string }
  return `${e?.message ?? String(err)}${e?.stderr && !e.message?.includes(e.stderr.trim()) ? `\n${e.stderr}` : ''}`
}

/** The first line of an error and, when it has more, its last (for a remote script: its last stderr line). */
function brief(err: unknown): string {
  const lines = detail(err).split('\n').map((l) => l.trim()).filter(Boolean)
  return lines.length > 1 ? `${lines[0]} ${lines[lines.length - 1]}` : lines[0] ?? 'unknown error'
}

// zstd on the copies. zstd -1 compresses at ~500 MB/s on one core here (README,
// "Compression, measured"); gzip is 5x slower and is not used. A direct copy is
// compressed when a sample of the file says it is worth it (sampleRatio against
// COMPRESS_MIN_RATIO), the relay's slow first leg whatever the sample says; both
// only when both ends have zstd (a host says so in its upload check; a host reached
// over an exec without it exits NO_ZSTD before reading anything). The SHA-256 of
// what is compressed is checked here as it is read; each host checks the frame's
// checksum and the size (zstdStream, uploadReceiveScript).
import { spawn, spawnSync } from 'node:child_process'
import { closeSync, createReadStream, openSync, readSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { deflateRaw } from 'node:zlib'
import { PassThrough, type Readable } from 'node:stream'
import { NO_ZSTD, uploadScript } from '../plan/scripts.ts'
import type { MemberPaths } from '../plan/paths.ts'
import type { SshHost } from '../ssh/connection.ts'
import { answerWithinMs, fanOutUpload, type UploadOutcome } from '../ssh/upload.ts'

let here: boolean | undefined

/** Whether this machine has zstd (asked once). */
export function localZstd(): boolean {
  here ??= spawnSync('zstd', ['--version'], { stdio: 'ignore' }).status === 0
  return here
}

/**
 * The file, zstd -1 compressed on one thread, as a stream: one frame with its
 * content checksum. The file is read here, once, and hashed on the way into zstd;
 * zstd's stdin is closed only when what was read is exactly the snapshot checked at
 * the start (`expect`: its size and SHA-256). So the frame ends (its last block and
 * checksum) only for those bytes: a file changed meanwhile ends the stream with an
 * error and every host's zstd -d finds a frame without its end. That is what lets a
 * host trust a frame whose checksum matched without hashing the file again
 * (uploadReceiveScript). A zstd that fails (or cannot start) ends the stream with an
 * error, never a clean end: the copy then fails here, named as this machine's zstd,
 * instead of each host finding a truncated stream. Destroying the stream ends zstd.
 */
export function zstdStream(file: string, expect: { sha256: string; size: number }): Readable {
  const child = spawn('zstd', ['-1', '-T1', '-q', '-c', '--check'], { stdio: ['pipe', 'pipe', 'pipe'] })
  const out = new PassThrough()
  const fail = (err: Error) => {
    if (!out.destroyed) out.destroy(err)
  }
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => { if (stderr.length < 2000) stderr += d.toString() })
  child.on('error', (err) => fail(new Error(`zstd on this machine did not start: ${err.message}`)))
  // A zstd that died says so in its exit status (close, below); one that quit early without
  // reading all of its input (EPIPE here) must not pass for done, whatever its status.
  let unread = false
  child.stdin.on('error', () => { unread = true })
  child.stdout.pipe(out, { end: false })
  const input = createReadStream(file, { highWaterMark: 1 << 20 })
  const hash = createHash('sha256')
  let read = 0
  input.on('data', (d: Buffer | string) => {
    hash.update(d)
    read += d.length
  })
  input.on('error', (err) => fail(new Error(`reading the snapshot for its copy failed: ${err.message}`)))
  input.pipe(child.stdin, { end: false })
  // Set only once what was read is the snapshot: no clean end without it, whatever zstd did.
  let verified = false
  input.on('end', () => {
    const sum = hash.digest('hex')
    if (read !== expect.size || sum !== expect.sha256) {
      fail(new Error(`the snapshot ${file} changed on this machine during the copy (${read} bytes, sha256 ${sum}; checked at the start: ${expect.size} bytes, ${expect.sha256}): its copies were stopped before their end`))
      return
    }
    verified = true
    child.stdin.end()
  })
  // Both the output's end and the exit status are needed before the stream may end cleanly.
  let code: number | null | undefined
  let drained = false
  const settle = () => {
    if (code === undefined || !drained || out.destroyed) return
    if (code === 0 && verified && !unread) out.end()
    else if (code === 0) fail(new Error('zstd on this machine ended before it read the whole snapshot: its copies were stopped before their end'))
    else fail(new Error(`zstd on this machine failed (${code === null ? `killed by ${child.signalCode ?? 'a signal'}` : `exit ${code}`})${stderr.trim() ? `: ${stderr.trim().split('\n').slice(-1)[0]}` : ''}`))
  }
  child.stdout.on('end', () => { drained = true; settle() })
  child.on('close', (c) => { code = c; settle() })
  out.on('close', () => {
    input.destroy()
    if (child.exitCode === null) child.kill()
  })
  return out
}

/**
 * A direct copy is zstd-compressed when a sample of the file shrinks at least this
 * much. Where the hosts' CPUs are what limits the copy (the lab: five sshd, the
 * encryption and the writes on two cores), each byte not sent saves about 6 ns per
 * host, and compressing once plus decompressing on every host costs about 1.1 ns
 * per byte per host (zstd -1 at ~540 MB/s here, its decompression ~1.5 GB/s): on 5
 * hosts it pays from a ratio of about 1.2 (README, "Compression, measured"). On a
 * real network, where the link limits, it pays sooner. Random data (1.0) never does.
 * sampleRatio measures with deflate, which shrinks a little less than zstd -1: a
 * margin on the safe side.
 */
export const COMPRESS_MIN_RATIO = 1.3

/**
 * How much a sample of the file shrinks: `samples` pieces of `piece` bytes spread
 * evenly over it (all of a small file), each compressed on its own (deflate level
 * 1, in Node's thread pool, no process started), original / compressed. Each on its
 * own, because pieces far apart in the file may repeat one another (values made
 * from one keystream, shifted) where a streaming compressor, whose window is far
 * smaller than the file, finds nothing: joined, they would promise what the copy
 * never gets. Deflate shrinks what zstd -1 shrinks, a little less (4.9x against
 * 6.1x on the Kubernetes-like snapshot measured in the README).
 */
export async function sampleRatio(file: string, size: number, o: { samples?: number; piece?: number } = {}): Promise<number> {
  const samples = o.samples ?? 16
  const piece = o.piece ?? 256 * 1024
  const parts: Buffer[] = []
  const fd = openSync(file, 'r')
  try {
    if (size <= samples * piece) {
      const b = Buffer.alloc(size)
      parts.push(b.subarray(0, readSync(fd, b, 0, size, 0)))
    } else {
      for (let i = 0; i < samples; i++) {
        const b = Buffer.alloc(piece)
        parts.push(b.subarray(0, readSync(fd, b, 0, piece, Math.floor(((size - piece) * i) / (samples - 1)))))
      }
    }
  } finally {
    closeSync(fd)
  }
  const total = parts.reduce((n, p) => n + p.length, 0)
  if (total === 0) return 1
  const sizes = await Promise.all(parts.map((p) => new Promise<number>((resolve, reject) => {
    deflateRaw(p, { level: 1 }, (err, out) => (err ? reject(err) : resolve(out.length)))
  })))
  return total / Math.max(1, sizes.reduce((a, b) => a + b, 0))
}

/**
 * The file zstd-compressed to each host over an exec of its own (one read for all;
 * each stream ends with its channel), for hosts whose session cannot take it or a
 * retry. A host without zstd reads nothing and fails so (lacksZstd): its caller
 * sends it the file plain.
 */
export function uploadCompressed(file: string, sha256: string, size: number, targets: Array<{ host: SshHost; paths: MemberPaths; onProgress?: (bytes: number) => void }>): Promise<UploadOutcome[]> {
  return fanOutUpload(() => zstdStream(file, { sha256, size }), targets.map((t) => ({ host: t.host, command: uploadScript(t.paths, sha256, size, 'zstd'), onProgress: t.onProgress })), undefined, { answerWithinMs: answerWithinMs(size) })
}

/** A compressed upload's failure that means only "this host has no zstd" (nothing was read or written). */
export function lacksZstd(error: unknown): boolean {
  return (error as { code?: number } | undefined)?.code === NO_ZSTD
}

// Streams one local file to several hosts at once, reading it once: each chunk
// read from disk is written to every host's channel, and reading pauses while
// any channel is full (ssh2 channels apply the SSH window as backpressure), so
// memory stays bounded and the file is read a single time however many hosts.
// A host that takes nothing for a while when the others wait for it (a hung disk,
// a link gone silent before keepalive notices) is cut from that read, so it
// cannot hold the others' copies; its own copy fails and is retried on its own.
import { createReadStream, statSync } from 'node:fs'
import type { ClientChannel } from 'ssh2'
import { Transform, pipeline, type Readable } from 'node:stream'
import type { ExecResult, SshHost } from './connection.ts'
import type { Script } from '../shell/sh.ts'
import { SshError } from './errors.ts'
import { frame, frameHeader } from './session.ts'

/** A run's persistent session on the host (lib/ssh/session.ts): the file goes over it, no new exec. */
export interface UploadSession {
  channel: Promise<ClientChannel>
  /** `bytes`: the file's length, or 'frames' for a stream of unknown length (session.ts's recvs). */
  receive(script: Script, bytes: number | 'frames', feed: () => Promise<void>): Promise<ExecResult>
  /** Ends the session (a receive cut short leaves it expecting bytes). */
  drop(): void
}

export interface UploadTarget {
  host: SshHost
  /** Remote command that reads the file from stdin (and verifies and renames it); it must read all of it when sent over a session. */
  command: Script
  /** Send over this session instead of a new SSH exec (no login shell on the host). */
  via?: UploadSession
  /** Bytes handed to this host's channel so far. */
  onProgress?: (bytes: number) => void
  /** Stops this host's copy alone (its script removes its part file); the others go on from the same read. */
  signal?: AbortSignal
}

export type UploadOutcome = { ok: true; result: ExecResult } | { ok: false; error: unknown }

const CHUNK = 1 << 18
/**
 * A stream of unknown length goes over a session in frames of at least this much
 * (its last may be less): each frame costs the host one read of its length line
 * and one start of its reader (dd), so not one per pipe-sized chunk.
 */
export const FRAME_BYTES = 1 << 20

/**
 * The stream's chunks joined into pieces of at least `min` bytes (the last may be
 * less). Destroying the result destroys the source at once (a compressor stuck on
 * a hung disk must not hold the copy).
 */
export function coalesce(source: Readable, min = FRAME_BYTES): Readable {
  let parts: Buffer[] = []
  let n = 0
  const joined = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      parts.push(chunk)
      n += chunk.length
      if (n < min) return cb()
      const piece = Buffer.concat(parts, n)
      parts = []
      n = 0
      cb(null, piece)
    },
    flush(cb) {
      cb(null, n ? Buffer.concat(parts, n) : undefined)
    },
  })
  pipeline(source, joined, () => {})
  return joined
}

/** `b` in pieces of at most `max` bytes: a channel's buffer then moves by at most that much per callback. */
function slices(b: Buffer, max = CHUNK): Buffer[] {
  if (b.length <= max) return [b]
  const out: Buffer[] = []
  for (let i = 0; i < b.length; i += max) out.push(b.subarray(i, i + max))
  return out
}

/** Ending a session twice (a cut, then the final sweep) is once. */
function once(f: () => void): () => void {
  let done = false
  return () => {
    if (!done) {
      done = true
      f()
    }
  }
}

/**
 * A host whose channel took nothing for this long (no chunk left its buffer) while
 * every other one waited for it is cut from the shared read.
 */
export const STALL_MS = 10_000
/** A host that takes nothing for this many stall limits is cut even when no other host goes on (60 s). */
const ALONE_FACTOR = 6

/**
 * From the moment a host's channel has taken the whole file (all of it in its SSH
 * window) to its answer: its last writes, and (a plain copy) the hash that reads the
 * file back, given 20 MB/s at worst, plus a minute. A host that says nothing for longer (its
 * disk hung under the last writes or the hash; the connection itself still
 * answering keepalives) has its copy ended, so the run does not wait forever.
 */
export function answerWithinMs(fileBytes: number): number {
  return 60_000 + Math.ceil(fileBytes / 20e6) * 1000
}

/**
 * `source`: a local file, or a function opening the stream to send (e.g. the file
 * compressed: over a session it goes in frames, its length not being known first).
 * `signal`: stop sending and close every channel (each host's script then removes its part file).
 */
export async function fanOutUpload(source: string | (() => Readable), targets: UploadTarget[], signal?: AbortSignal, o: { stallMs?: number; answerWithinMs?: number } = {}): Promise<UploadOutcome[]> {
  const stallMs = o.stallMs ?? STALL_MS
  const size = typeof source === 'string' ? statSync(source).size : undefined
  // A stream's length is not known here; its caller knows the file's (default: 1 GiB's limit).
  const answerMs = o.answerWithinMs ?? answerWithinMs(size ?? 2 ** 30)
  const sinks = targets.map((t) => {
    // Per host: bytes handed over, whether it still takes them, and since when (and with how
    // much in its channel's buffer) the shared read waits for it.
    let stallNow!: () => void
    const stalledP = new Promise<'stalled'>((r) => { stallNow = () => r('stalled') })
    const base = { target: t, sent: 0, alive: true, stream: undefined as ClientChannel | undefined, waitingSince: 0, buffered: 0, stalled: undefined as 'others' | 'alone' | 'silent' | undefined, stalledP, stallNow, answered: false, tookAllAt: 0 }
    if (t.via) {
      const via = t.via
      let fed!: () => void
      const allSent = new Promise<void>((r) => { fed = r })
      let open!: (c: ClientChannel) => void
      let fail!: (e: unknown) => void
      const channel = new Promise<ClientChannel>((res, rej) => { open = res; fail = rej })
      channel.catch(() => {})
      // The session calls feed when the file's turn comes; the bytes written then are the script's stdin.
      const result = via.receive(t.command, size ?? 'frames', async () => {
        open(await via.channel)
        await allSent
      })
      result.catch((e) => fail(e))
      return { ...base, channel, result, finish: fed, drop: once(() => { fed(); via.drop() }) }
    }
    const { channel, result } = t.host.spawn(t.command)
    return { ...base, channel, result, finish: undefined as (() => void) | undefined, drop: undefined as (() => void) | undefined }
  })
  // A host whose channel cannot open is reported; the others go on.
  await Promise.all(sinks.map(async (s) => {
    try {
      s.stream = await s.channel
      s.stream.on('close', () => { s.alive = false; release(s) })
      s.stream.on('error', () => { s.alive = false; release(s) })
    } catch {
      s.alive = false
    }
  }))

  const waiting = new Set<(typeof sinks)[number]>()
  const input = typeof source === 'string' ? createReadStream(source, { highWaterMark: CHUNK }) : coalesce(source())
  // A stream of unknown length goes over a session in frames; an exec takes it as it is.
  const framed = size === undefined
  let inputEnded = false
  function release(s: (typeof sinks)[number]) {
    waiting.delete(s)
    if (waiting.size === 0 && input.isPaused()) input.resume()
  }

  // A host's copy ends: a session is dropped (it was told a byte count), a channel closed.
  const end = (s: (typeof sinks)[number]) => {
    s.alive = false
    if (s.drop) s.drop()
    else s.stream?.close()
  }
  // One host's copy ends while the others go on from the same read.
  const cut = (s: (typeof sinks)[number]) => {
    end(s)
    release(s)
  }
  const stop = () => {
    input.destroy()
    sinks.forEach(end)
  }
  if (signal?.aborted) stop()
  signal?.addEventListener('abort', stop, { once: true })
  const cuts = sinks.map((s) => {
    const onAbort = () => cut(s)
    if (s.target.signal?.aborted) onAbort()
    s.target.signal?.addEventListener('abort', onAbort, { once: true })
    return () => s.target.signal?.removeEventListener('abort', onAbort)
  })
  // Only a host the others wait for is cut: when every channel is full, the link is slow, not one host.
  let readDone = false
  const watch = setInterval(() => {
    const now = Date.now()
    // Each host that took the whole file and has not answered: its answer is due within answerMs.
    if (readDone) {
      for (const s of sinks) {
        if (!s.alive || s.answered || s.stalled || waiting.has(s)) continue
        s.tookAllAt ||= now
        if (now - s.tookAllAt < answerMs) continue
        s.stalled = 'silent'
        cut(s)
        s.stallNow()
      }
    }
    for (const s of [...waiting]) {
      // Progress is a chunk leaving the channel's buffer, not the whole buffer draining
      // (ssh2's holds 2 MiB: a steady 150 KB/s host would take 14 s to drain it).
      const buffered = s.stream?.writableLength ?? 0
      if (readDone && (buffered === 0 || !s.alive)) {
        waiting.delete(s)
        continue
      }
      if (buffered !== s.buffered) {
        s.buffered = buffered
        s.waitingSince = now
        continue
      }
      const still = now - s.waitingSince
      // Alone (its retry, a relay's first leg), with every other one waiting too, or once the
      // read is done (no one waits for it): not judged against the others, but no copy waits
      // forever on a host that moves nothing.
      if (still < stallMs || (still < stallMs * ALONE_FACTOR && (readDone || !sinks.some((x) => x !== s && x.alive && !waiting.has(x))))) continue
      s.stalled = still >= stallMs * ALONE_FACTOR ? 'alone' : 'others'
      cut(s)
      s.stallNow()
    }
  }, Math.min(1000, Math.max(10, stallMs / 4)))
  watch.unref()
  await new Promise<void>((resolve, reject) => {
    input.on('data', (chunk: Buffer) => {
      // A frame's header, then its bytes, each write at most CHUNK: the stall watch sees the
      // channel's buffer move chunk by chunk, as for a file, not only once per 1 MiB frame.
      const pieces = slices(chunk)
      const framedPieces = framed ? [frameHeader(chunk.length), ...pieces] : pieces
      for (const s of sinks) {
        if (!s.alive || !s.stream) continue
        let more = true
        for (const piece of s.finish ? framedPieces : pieces) more = s.stream.write(piece)
        s.sent += chunk.length
        s.target.onProgress?.(s.sent)
        if (!more) {
          s.waitingSince = Date.now()
          s.buffered = s.stream.writableLength
          waiting.add(s)
          s.stream.once('drain', () => release(s))
        }
      }
      if (waiting.size > 0) input.pause()
      if (!sinks.some((s) => s.alive)) input.destroy()
    })
    input.on('end', () => { inputEnded = true; resolve() })
    input.on('close', resolve)
    input.on('error', reject)
  }).catch((err) => {
    clearInterval(watch)
    // A session told to expect bytes that will not come would wait for them forever.
    sinks.forEach(end)
    throw err
  })
  // The whole file is handed over; a host whose channel still holds some of it and takes
  // none of it for long (a small file that fit in its window and buffer, then a hung disk)
  // is watched on until its copy answers.
  readDone = true
  for (const s of sinks) {
    if (!s.alive || !(s.stream?.writableLength ?? 0)) continue
    if (!waiting.has(s)) s.waitingSince = Date.now()
    s.buffered = s.stream!.writableLength
    waiting.add(s)
  }
  signal?.removeEventListener('abort', stop)
  cuts.forEach((off) => off())
  for (const s of sinks) {
    // A session's channel stays open: the script has had its bytes, the session goes on.
    if (s.finish) {
      if (s.alive && (framed ? inputEnded : s.sent === size)) {
        if (framed) s.stream!.write(frame())
        s.finish()
      } else s.drop?.()
    } else if (s.alive) s.stream?.end()
  }

  const stallError = (s: (typeof sinks)[number]) => new SshError(s.target.host.name, s.stalled === 'others'
    ? `took no data for ${stallMs / 1000} s while the other hosts waited for it: cut from the shared read so they go on`
    : s.stalled === 'silent'
      ? `took the whole file but did not answer within ${Math.round(answerMs / 1000)} s (its last writes or its check of the file hang: a hung disk?): its copy was ended`
      : `took no data for ${(stallMs * ALONE_FACTOR) / 1000} s (a hung disk or a link gone silent): its copy was ended`)
  try {
    return await Promise.all(sinks.map(async (s): Promise<UploadOutcome> => {
      // A cut host's copy is not waited for: sshd keeps its channel open for as long as the
      // command runs, and a writer stuck on a hung disk may never end.
      s.result.then(() => { s.answered = true }, () => { s.answered = true })
      try {
        const r = await Promise.race([s.result, s.stalledP])
        return r === 'stalled' ? { ok: false, error: stallError(s) } : { ok: true, result: r }
      } catch (error) {
        return { ok: false, error: s.stalled ? stallError(s) : error }
      }
    }))
  } finally {
    clearInterval(watch)
  }
}

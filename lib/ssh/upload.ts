// Streams one local file to several hosts at once, reading it once: each chunk
// read from disk is written to every host's channel, and reading pauses while
// any channel is full (ssh2 channels apply the SSH window as backpressure), so
// memory stays bounded and the file is read a single time however many hosts.
import { createReadStream } from 'node:fs'
import type { ClientChannel } from 'ssh2'
import type { Readable } from 'node:stream'
import type { ExecResult, SshHost } from './connection.ts'
import type { Script } from '../shell/sh.ts'

export interface UploadTarget {
  host: SshHost
  /** Remote command that reads the file from stdin (and verifies and renames it). */
  command: Script
  /** Bytes handed to this host's channel so far. */
  onProgress?: (bytes: number) => void
}

export type UploadOutcome = { ok: true; result: ExecResult } | { ok: false; error: unknown }

const CHUNK = 1 << 18

/** `source`: a local file, or a function opening the stream to send (e.g. the file compressed). */
export async function fanOutUpload(source: string | (() => Readable), targets: UploadTarget[]): Promise<UploadOutcome[]> {
  const sinks = targets.map((t) => {
    const { channel, result } = t.host.spawn(t.command)
    return { target: t, channel, result, sent: 0, alive: true, stream: undefined as ClientChannel | undefined }
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
  const input = typeof source === 'string' ? createReadStream(source, { highWaterMark: CHUNK }) : source()
  function release(s: (typeof sinks)[number]) {
    waiting.delete(s)
    if (waiting.size === 0 && input.isPaused()) input.resume()
  }

  await new Promise<void>((resolve, reject) => {
    input.on('data', (chunk: Buffer) => {
      for (const s of sinks) {
        if (!s.alive || !s.stream) continue
        const more = s.stream.write(chunk)
        s.sent += chunk.length
        s.target.onProgress?.(s.sent)
        if (!more) {
          waiting.add(s)
          s.stream.once('drain', () => release(s))
        }
      }
      if (waiting.size > 0) input.pause()
      if (!sinks.some((s) => s.alive)) input.destroy()
    })
    input.on('end', resolve)
    input.on('close', resolve)
    input.on('error', reject)
  })
  for (const s of sinks) if (s.alive) s.stream?.end()

  return Promise.all(sinks.map(async (s): Promise<UploadOutcome> => {
    try {
      return { ok: true, result: await s.result }
    } catch (error) {
      return { ok: false, error }
    }
  }))
}

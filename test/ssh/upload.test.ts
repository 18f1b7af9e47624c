// The one-read fan-out's flow control, with channels that stand in for SSH
// channels (Writables with a small buffer): no network. What it must do: read
// the file once for every host, and never let one host that takes nothing hold
// the others' copies for longer than the stall limit.
import { afterAll, describe, expect, it } from 'vitest'
import { Readable, Writable } from 'node:stream'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import type { ClientChannel } from 'ssh2'
import { answerWithinMs, coalesce, fanOutUpload, type UploadTarget } from '../../lib/ssh/upload.ts'
import { sh } from '../../lib/shell/sh.ts'
import type { SshHost } from '../../lib/ssh/connection.ts'

const dir = mkdtempSync(join(tmpdir(), 'upload-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const file = join(dir, 'snap.db')
const bytes = Buffer.alloc(6 << 20)
for (let i = 0; i < bytes.length; i += 4096) bytes.writeUInt32LE(i, i)
writeFileSync(file, bytes)

/**
 * A host whose channel takes each chunk at once (after `delayMs`), or (stuck) never:
 * its buffer fills and never drains. `highWaterMark` as ssh2's channels have it (2 MiB)
 * or smaller.
 */
function target(name: string, o: { stuck?: boolean; delayMs?: number; highWaterMark?: number; tick?: () => Promise<void>; answerAfterMs?: number } = {}): UploadTarget {
  const chunks: Buffer[] = []
  let received = 0
  let done!: () => void
  const all = new Promise<void>((r) => { done = r })
  const channel = new Writable({
    highWaterMark: o.highWaterMark ?? 1 << 16,
    write(chunk: Buffer, _enc, cb) {
      if (o.stuck) return // never calls back: nothing more is taken
      const take = () => {
        chunks.push(chunk)
        received += chunk.length
        if (received >= bytes.length) done()
        cb()
      }
      if (o.tick) void o.tick().then(take)
      else setTimeout(take, o.delayMs ?? 0)
    },
  }) as unknown as ClientChannel
  let fail!: (e: Error) => void
  const dropped = new Promise<never>((_r, rej) => { fail = rej })
  dropped.catch(() => {})
  return {
    host: { name } as SshHost,
    command: sh`cat`,
    via: {
      channel: Promise.resolve(channel),
      receive: async (_script, _n, feed) => {
        // Every byte taken; then the host's own work (its last writes, its hash) before it answers.
        const answered = feed().then(() => all).then(() => new Promise<void>((r) => {
          if (o.answerAfterMs !== Infinity) setTimeout(r, o.answerAfterMs ?? 0)
        }))
        await Promise.race([answered, dropped])
        return { code: 0, stdout: createHash('sha256').update(Buffer.concat(chunks)).digest('hex'), stderr: '' }
      },
      drop: () => fail(new Error('the session ended')),
    },
  }
}

describe('fanOutUpload', () => {
  const sha = createHash('sha256').update(bytes).digest('hex')

  it('sends every byte to every host from one read', async () => {
    const out = await fanOutUpload(file, [target('a'), target('b'), target('c')])
    expect(out.map((o) => o.ok && o.result.stdout)).toEqual([sha, sha, sha])
  })

  it('cuts a host that takes nothing while the others wait for it; they finish, it fails saying why', async () => {
    const t0 = Date.now()
    const out = await fanOutUpload(file, [target('a'), target('stuck', { stuck: true }), target('c')], undefined, { stallMs: 300 })
    expect(Date.now() - t0).toBeLessThan(5000) // not the 10 s default, nor forever
    expect(out[0]).toMatchObject({ ok: true, result: { stdout: sha } })
    expect(out[2]).toMatchObject({ ok: true, result: { stdout: sha } })
    expect(out[1].ok).toBe(false)
    expect(String((out[1] as { error: Error }).error.message)).toMatch(/took no data for 0.3 s while the other hosts waited for it/)
  })

  it('does not cut a host that keeps taking chunks, however long its full buffer takes to drain', async () => {
    // A 2 MiB buffer taken at a chunk (256 KiB) every 100 ms: it drains only after 800 ms,
    // four times the stall limit, while the other host waits; every chunk is progress.
    const out = await fanOutUpload(file, [target('fast'), target('steady', { delayMs: 100, highWaterMark: 2 << 20 })], undefined, { stallMs: 200 })
    expect(out.map((o) => o.ok)).toEqual([true, true])
  })

  it('ends the copy of a host that takes nothing even with no other host to go on (its retry alone; all stuck): after 6 stall limits', async () => {
    const alone = await fanOutUpload(file, [target('stuck', { stuck: true })], undefined, { stallMs: 100 })
    expect(alone[0].ok).toBe(false)
    expect(String((alone[0] as { error: Error }).error.message)).toMatch(/took no data for 0.6 s \(a hung disk or a link gone silent\): its copy was ended/)
    const both = await fanOutUpload(file, [target('a', { stuck: true }), target('b', { stuck: true })], undefined, { stallMs: 100 })
    expect(both.map((o) => o.ok)).toEqual([false, false])
    // Over its own exec (a retry): sshd keeps a channel whose command still runs open, so the
    // command's end is not waited for once its copy is cut.
    const channel = Object.assign(new Writable({ highWaterMark: 1 << 16, write() {} }), { close() {} }) as unknown as ClientChannel
    const exec = { name: 'exec', spawn: () => ({ channel: Promise.resolve(channel), result: new Promise<never>(() => {}) }) } as unknown as SshHost
    const [own] = await fanOutUpload(file, [{ host: exec, command: sh`cat` }], undefined, { stallMs: 100 })
    expect(String((own as { error: Error }).error.message)).toMatch(/took no data for 0.6 s/)
  })

  it('ends the copy of a host that took the whole file into its buffer and then nothing (a small file, then a hung disk)', async () => {
    // The file fits in the channel's buffer: the read is done at once, the bytes never leave it.
    const t0 = Date.now()
    const out = await fanOutUpload(file, [target('a'), target('stuck', { stuck: true, highWaterMark: 8 << 20 })], undefined, { stallMs: 100 })
    expect(out[0]).toMatchObject({ ok: true, result: { stdout: sha } })
    expect(String((out[1] as { error: Error }).error.message)).toMatch(/took no data for 0.6 s \(a hung disk or a link gone silent\): its copy was ended/)
    expect(Date.now() - t0).toBeLessThan(5000)
  })

  it('ends the copy of a host that took every byte and then never answered (its last writes or hash hang); one that answers in time is kept', async () => {
    const t0 = Date.now()
    const out = await fanOutUpload(file, [target('a', { answerAfterMs: 100 }), target('silent', { answerAfterMs: Infinity })], undefined, { stallMs: 100, answerWithinMs: 500 })
    expect(out[0]).toMatchObject({ ok: true, result: { stdout: sha } })
    expect(out[1].ok).toBe(false)
    expect(String((out[1] as { error: Error }).error.message)).toMatch(/took the whole file but did not answer within 1 s \(its last writes or its check of the file hang: a hung disk\?\): its copy was ended/)
    expect(Date.now() - t0).toBeLessThan(5000)
  })

  it('gives a host\'s answer after the whole file a minute, plus its hash at 20 MB/s', () => {
    expect(answerWithinMs(0)).toBe(60_000)
    expect(answerWithinMs(1e9)).toBe(110_000)
  })

  it('cuts no one when every host is slow alike (the link, not one host)', async () => {
    // Each channel takes a chunk only after longer than the stall limit, all on one shared
    // clock (one link): all wait together, none is singled out. (Separate timers would let
    // one host drain a moment before the other on a loaded machine, and that moment is what
    // a host that holds the others back looks like.)
    let next: Promise<void> = new Promise((r) => setTimeout(r, 60))
    const clock = setInterval(() => { next = new Promise((r) => setTimeout(r, 60)) }, 60)
    try {
      const tick = () => next
      const out = await fanOutUpload(file, [target('a', { tick }), target('b', { tick })], undefined, { stallMs: 20 })
      expect(out.map((o) => o.ok)).toEqual([true, true])
    } finally {
      clearInterval(clock)
    }
  })
})

describe('fanOutUpload of a stream of unknown length (a file compressed on the way)', () => {
  /** A session that records the raw bytes it was fed and the length it was told. */
  function framedTarget(name: string) {
    const raw: Buffer[] = []
    let told: number | 'frames' | undefined
    let dropped = false
    const channel = new Writable({ write(chunk: Buffer, _enc, cb) { raw.push(chunk); cb() } }) as unknown as ClientChannel
    const t: UploadTarget = {
      host: { name } as SshHost,
      command: sh`cat`,
      via: {
        channel: Promise.resolve(channel),
        receive: async (_script, n, feed) => {
          told = n
          await feed()
          return { code: 0, stdout: '', stderr: '' }
        },
        drop: () => { dropped = true },
      },
    }
    return { t, raw: () => Buffer.concat(raw), told: () => told, dropped: () => dropped }
  }
  /** Splits length-line frames; what is left after the empty frame is returned too. */
  function unframe(b: Buffer): { frames: Buffer[]; ended: boolean; rest: number } {
    const frames: Buffer[] = []
    let at = 0
    while (at < b.length) {
      const nl = b.indexOf(10, at)
      const n = Number(b.subarray(at, nl).toString())
      at = nl + 1
      if (n === 0) return { frames, ended: true, rest: b.length - at }
      frames.push(b.subarray(at, at + n))
      at += n
    }
    return { frames, ended: false, rest: 0 }
  }

  it('sends it in frames of at least 1 MiB (the last may be less), then the empty frame that ends it', async () => {
    const a = framedTarget('a')
    const b = framedTarget('b')
    // Small pieces, as a compressor's pipe gives them.
    const out = await fanOutUpload(() => Readable.from((function* () { for (let i = 0; i < bytes.length; i += 65536) yield bytes.subarray(i, i + 65536) })()), [a.t, b.t])
    expect(out.every((o) => o.ok)).toBe(true)
    for (const x of [a, b]) {
      expect(x.told()).toBe('frames')
      const { frames, ended, rest } = unframe(x.raw())
      expect(ended).toBe(true)
      expect(rest).toBe(0)
      expect(Buffer.concat(frames).equals(bytes)).toBe(true)
      expect(frames.slice(0, -1).every((f) => f.length >= 1 << 20)).toBe(true)
      expect(frames.length).toBeLessThanOrEqual(6)
    }
  })

  it('a host cut mid-stream gets no end frame (its session is dropped); the others get the whole stream and its end', async () => {
    const a = framedTarget('a')
    const b = framedTarget('b')
    const cut = new AbortController()
    a.t.signal = cut.signal
    let sent = 0
    const source = () => Readable.from((async function* () {
      for (let i = 0; i < bytes.length; i += 65536) {
        if ((sent += 65536) === 2 << 20) cut.abort()
        yield bytes.subarray(i, i + 65536)
        await new Promise((r) => setImmediate(r))
      }
    })())
    const out = await fanOutUpload(source, [a.t, b.t])
    expect(out[1].ok).toBe(true)
    expect(a.dropped()).toBe(true)
    expect(unframe(a.raw()).ended).toBe(false)
    const whole = unframe(b.raw())
    expect(whole.ended).toBe(true)
    expect(Buffer.concat(whole.frames).equals(bytes)).toBe(true)
  })

  it('is written to each channel in pieces of at most 256 KiB, frames of 1 MiB or not (the stall watch sees it move)', async () => {
    const writes: number[] = []
    const a = framedTarget('a')
    const channel = await a.t.via!.channel
    const write = channel.write.bind(channel)
    channel.write = ((chunk: Buffer, ...rest: never[]) => { writes.push(chunk.length); return write(chunk, ...rest) }) as typeof channel.write
    await fanOutUpload(() => Readable.from([bytes]), [a.t])
    expect(Math.max(...writes)).toBeLessThanOrEqual(256 * 1024)
    expect(Buffer.concat(unframe(a.raw()).frames).equals(bytes)).toBe(true)
  })

  it('destroying the joined stream destroys its source at once (a compressor stuck on a hung disk does not hold the copy)', async () => {
    const source = new Readable({ read() {} })
    source.push(Buffer.alloc(1000))
    const joined = coalesce(source)
    joined.resume()
    await new Promise((r) => setImmediate(r))
    joined.destroy()
    await new Promise((r) => setImmediate(r))
    expect(source.destroyed).toBe(true)
  })

  it('does not end the stream when its source fails half way: each session is dropped, never left waiting for bytes', async () => {
    const a = framedTarget('a')
    const source = () => Readable.from((async function* () {
      yield bytes.subarray(0, 3 << 20)
      throw new Error('the compressor died')
    })())
    await expect(fanOutUpload(source, [a.t])).rejects.toThrow(/the compressor died/)
    expect(a.dropped()).toBe(true)
    expect(unframe(a.raw()).ended).toBe(false)
  })
})

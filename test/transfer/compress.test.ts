// Whether a direct copy is compressed: a sample of the file, each piece deflated on its own. Real zstd for comparison,
// on files made here: random values (the bench's default load) must not be
// compressed, Kubernetes-like objects (lib/bench/kube.ts) must.
import { afterAll, describe, expect, it } from 'vitest'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createHash, randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { COMPRESS_MIN_RATIO, sampleRatio, zstdStream } from '../../lib/transfer/compress.ts'
import { kubeObject } from '../../lib/bench/kube.ts'
import { batchTakesZstd } from '../../lib/recover/copy.ts'

const dir = mkdtempSync(join(tmpdir(), 'compress-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const hasZstd = spawnSync('zstd', ['--version']).status === 0

function kubeFile(objects: number): Buffer {
  const parts: Buffer[] = []
  for (let i = 0; i < objects; i++) {
    const o = kubeObject('compress-test', i)
    parts.push(Buffer.from(o.key), o.value)
  }
  return Buffer.concat(parts)
}

describe.runIf(hasZstd)('sampleRatio', () => {
  it('finds random values incompressible and Kubernetes-like objects well above the threshold, from samples of a large file and from all of a small one', async () => {
    const random = join(dir, 'random.db')
    writeFileSync(random, randomBytes(12 << 20))
    const kube = join(dir, 'kube.db')
    const k = kubeFile(4000)
    writeFileSync(kube, k)
    const small = join(dir, 'small.db')
    writeFileSync(small, k.subarray(0, 100_000))
    const r = await sampleRatio(random, 12 << 20)
    expect(r).toBeLessThan(1.05)
    expect(await sampleRatio(kube, k.length)).toBeGreaterThan(1.8)
    expect(await sampleRatio(small, 100_000)).toBeGreaterThan(COMPRESS_MIN_RATIO)
    // Samples spread over the whole file: random at the end counts.
    const mixed = join(dir, 'mixed.db')
    writeFileSync(mixed, Buffer.concat([k.subarray(0, 6 << 20), randomBytes(24 << 20)]))
    expect(await sampleRatio(mixed, (6 << 20) + (24 << 20))).toBeLessThan(COMPRESS_MIN_RATIO)
  })

  it('is not fooled by pieces far apart that repeat one another, beyond the reach of zstd -1 on the stream', async () => {
    // 1 MiB repeated every 1.4 MiB, random in between: zstd -1 over the file finds nothing;
    // pieces sampled at other phases of it and joined would hold one another (zstd -1 on the
    // joined sample, the first version, said 3.8x). Deflate's window is too short to see
    // them even joined: this guards the estimate against a long-window compressor.
    const b = randomBytes(1 << 20)
    const all = Buffer.concat(Array.from({ length: 30 }, () => [b, randomBytes(400 * 1024)]).flat())
    const file = join(dir, 'far.db')
    writeFileSync(file, all)
    const whole = spawnSync('zstd', ['-1', '-c', file], { maxBuffer: 1 << 30 }).stdout.length
    expect(all.length / whole).toBeLessThan(1.05)
    expect(await sampleRatio(file, all.length)).toBeLessThan(1.05)
  })
})

describe('kubeObject', () => {
  it('is the same for the same seed and index, different otherwise, keyed under /registry/ with the protobuf envelope; Secrets encrypted', () => {
    expect(kubeObject('s', 3)).toEqual(kubeObject('s', 3))
    expect(kubeObject('s', 3).value.equals(kubeObject('t', 3).value)).toBe(false)
    const objects = Array.from({ length: 20 }, (_, i) => kubeObject('s', i))
    for (const o of objects) {
      expect(o.key).toMatch(/^\/registry\/[a-z/]+\/[a-z-]+\/[a-z0-9.-]+$/)
      expect(o.value.subarray(0, 4).toString()).toMatch(/^(k8s\0|k8s:)/)
    }
    expect(objects.filter((o) => o.key.startsWith('/registry/secrets/')).every((o) => o.value.toString('latin1').startsWith('k8s:enc:aescbc:v1:key1:'))).toBe(true)
  })
})

describe.runIf(hasZstd)('zstdStream', () => {
  const collect = (r: NodeJS.ReadableStream) => new Promise<Buffer>((resolve, reject) => {
    const parts: Buffer[] = []
    r.on('data', (d: Buffer) => parts.push(d))
    r.on('end', () => resolve(Buffer.concat(parts)))
    r.on('error', reject)
  })
  const expectOf = (data: Buffer) => ({ sha256: createHash('sha256').update(data).digest('hex'), size: data.length })
  /** What the stream gave before it ended, and how it ended. */
  const drain = (r: NodeJS.ReadableStream) => new Promise<{ got: Buffer; error?: Error }>((resolve) => {
    const parts: Buffer[] = []
    r.on('data', (d: Buffer) => parts.push(d))
    r.on('end', () => resolve({ got: Buffer.concat(parts) }))
    r.on('error', (error: Error) => resolve({ got: Buffer.concat(parts), error }))
  })

  it('gives the file zstd-compressed, one frame with its checksum', async () => {
    const file = join(dir, 'plain.db')
    const data = Buffer.concat(Array.from({ length: 2000 }, (_, i) => kubeObject('stream', i).value))
    writeFileSync(file, data)
    const packed = await collect(zstdStream(file, expectOf(data)))
    expect(packed.length).toBeLessThan(data.length)
    expect(spawnSync('zstd', ['-d', '-c'], { input: packed, maxBuffer: 1 << 30 }).stdout.equals(data)).toBe(true)
    // Frame header descriptor: the content checksum flag (bit 2) set, so every host's zstd -d checks it.
    expect(packed.readUInt32LE(0)).toBe(0xfd2fb528)
    expect(packed[4] & 0x04).toBe(0x04)
  })

  it('never ends the frame for bytes other than the snapshot checked at the start: a file changed meanwhile ends it with an error, and what was sent does not decompress', async () => {
    const file = join(dir, 'changed.db')
    const checked = Buffer.concat(Array.from({ length: 3000 }, (_, i) => kubeObject('checked', i).value))
    const now = Buffer.from(checked)
    now[now.length - 10] ^= 0xff
    writeFileSync(file, now)
    const changed = await drain(zstdStream(file, expectOf(checked)))
    expect(changed.error?.message).toMatch(/changed on this machine during the copy/)
    const sent = spawnSync('zstd', ['-d', '-c'], { input: changed.got, maxBuffer: 1 << 30 })
    expect(sent.status).not.toBe(0)
    // Grown, or gone, the same.
    writeFileSync(file, Buffer.concat([checked, Buffer.from('more')]))
    expect((await drain(zstdStream(file, expectOf(checked)))).error?.message).toMatch(/changed on this machine during the copy \(\d+ bytes/)
    expect((await drain(zstdStream(join(dir, 'no-such.db'), expectOf(checked)))).error?.message).toMatch(/reading the snapshot for its copy failed: ENOENT/)
  })

  it('ends with an error naming this machine\'s zstd when it fails, never a clean end', async () => {
    const file = join(dir, 'ok.db')
    const data = Buffer.alloc(1 << 20, 7)
    writeFileSync(file, data)
    const bin = mkdtempSync(join(dir, 'bin-'))
    writeFileSync(join(bin, 'zstd'), '#!/bin/sh\ncat > /dev/null\necho "zstd: out of memory" >&2\nexit 1\n', { mode: 0o755 })
    const path = process.env.PATH
    process.env.PATH = `${bin}:${path}`
    try {
      expect((await drain(zstdStream(file, expectOf(data)))).error?.message).toMatch(/zstd on this machine failed \(exit 1\): zstd: out of memory/)
      // One that says all is well (exit 0) after a part of its input: no clean end either.
      writeFileSync(join(bin, 'zstd'), '#!/bin/sh\nhead -c 10 > /dev/null\nexit 0\n', { mode: 0o755 })
      const early = await drain(zstdStream(file, expectOf(data)))
      expect(early.error?.message).toMatch(/zstd on this machine ended before it read the whole snapshot/)
    } finally {
      process.env.PATH = path
    }
  })
})

describe('batchTakesZstd', () => {
  const yes = { via: {}, check: 'created-work=/w\nzstd=1\nready\n' }
  it('sends a batch compressed only when every host of it takes files over its session and has zstd', () => {
    expect(batchTakesZstd([yes, yes])).toBe(true)
    // One host without zstd, or without a session (its copy over an exec): the one read goes plain to all.
    expect(batchTakesZstd([yes, { via: {}, check: 'ready\n' }])).toBe(false)
    expect(batchTakesZstd([yes, { check: 'zstd=1\nready\n' }])).toBe(false)
    // The line itself, not a mention of it.
    expect(batchTakesZstd([{ via: {}, check: 'no zstd=1 here\n' }])).toBe(false)
    expect(batchTakesZstd([])).toBe(false)
  })
})

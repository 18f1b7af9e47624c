import { describe, expect, it } from 'vitest'
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { inspectSnapshot } from '../../lib/etcd/snapshot.ts'
import { InputError } from '../../lib/errors.ts'

// A real snapshot written by `etcdctl snapshot save` (etcd 3.4.23, 50 keys, revision 51).
const REAL = new URL('../fixtures/etcd/snapshot-3.4.23-rev51.db', import.meta.url).pathname
const dir = mkdtempSync(join(tmpdir(), 'snap-'))
const bytes = readFileSync(REAL)

function variant(name: string, data: Buffer): string {
  const p = join(dir, name)
  writeFileSync(p, data)
  return p
}

describe('inspectSnapshot', () => {
  it('accepts a snapshot whose trailer matches and hashes the whole file', async () => {
    const info = await inspectSnapshot(REAL)
    expect(info.hasTrailer).toBe(true)
    expect(info.size).toBe(bytes.length)
    expect(info.pageSize).toBe(4096)
    expect(info.sha256).toBe(createHash('sha256').update(bytes).digest('hex'))
  })

  it('refuses a flipped byte, naming both hashes', async () => {
    const bad = Buffer.from(bytes)
    bad[8192] ^= 0xff
    const p = variant('flipped.db', bad)
    const err = await inspectSnapshot(p).catch((e) => e)
    expect(err).toBeInstanceOf(InputError)
    expect(err.exitCode).toBe(2)
    expect(err.message).toMatch(/integrity check failed: the file's trailer says sha256 [0-9a-f]{64}, its content hashes to [0-9a-f]{64}/)
    expect(err.where).toBe(p)
  })

  it('refuses a raw db without trailer unless --skip-hash-check', async () => {
    const p = variant('raw.db', bytes.subarray(0, bytes.length - 32))
    await expect(inspectSnapshot(p)).rejects.toThrow(/no integrity trailer/)
    const info = await inspectSnapshot(p, { skipHashCheck: true })
    expect(info.hasTrailer).toBe(false)
  })

  it('refuses a truncated file and a file that is not bbolt', async () => {
    await expect(inspectSnapshot(variant('trunc.db', bytes.subarray(0, 100)))).rejects.toThrow(/not an etcd snapshot/)
    await expect(inspectSnapshot(variant('text.db', Buffer.alloc(8192, 'x')))).rejects.toThrow(/not an etcd snapshot/)
    await expect(inspectSnapshot(join(dir, 'missing.db'))).rejects.toThrow(/cannot read snapshot/)
    await expect(inspectSnapshot(dir)).rejects.toThrow(/not a regular file/)
  })

  // Issue 8, fault 10: every bad file is refused before any host is contacted, as bad input (exit 2).
  it.each([
    ['empty', () => Buffer.alloc(0), /not an etcd snapshot/],
    ['truncated mid-file', () => bytes.subarray(0, Math.floor(bytes.length / 2)), /no integrity trailer/],
    ['truncated by whole pages (the trailer rule still matches)', () => bytes.subarray(0, bytes.length - 4096), /integrity check failed/],
    ['one flipped byte', () => { const b = Buffer.from(bytes); b[b.length - 100] ^= 1; return b }, /integrity check failed/],
    ['not etcd at all', () => Buffer.from('PK\x03\x04 a zip file, not bbolt'.padEnd(8192, 'z')), /not an etcd snapshot/],
    ['a raw member/snap/db without --skip-hash-check', () => bytes.subarray(0, bytes.length - 32), /no integrity trailer/],
  ])('refuses %s with exit code 2', async (name, make, message) => {
    const err = await inspectSnapshot(variant(`${name.replace(/\W+/g, '-')}.db`, make())).catch((e) => e)
    expect(err).toBeInstanceOf(InputError)
    expect(err.exitCode).toBe(2)
    expect(err.message).toMatch(message)
  })
})

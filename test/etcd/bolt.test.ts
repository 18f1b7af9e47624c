import { describe, expect, it } from 'vitest'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BoltFormatError, readBoltFacts } from '../../lib/etcd/bolt.ts'

// Written by `etcdctl snapshot save` (etcd 3.4.23); `snapshot status` says revision 51.
const REAL = new URL('../fixtures/etcd/snapshot-3.4.23-rev51.db', import.meta.url).pathname
const dir = mkdtempSync(join(tmpdir(), 'bolt-'))

describe('readBoltFacts', () => {
  it('reads the revision snapshot status reports, and the consistent index', async () => {
    expect(await readBoltFacts(REAL)).toEqual({ revision: 51, consistentIndex: 54 })
  })

  it('reads a raw database (no trailer) the same way', async () => {
    const raw = join(dir, 'raw.db')
    const bytes = readFileSync(REAL)
    writeFileSync(raw, bytes.subarray(0, bytes.length - 32))
    expect((await readBoltFacts(raw)).revision).toBe(51)
  })

  it('falls back to the second meta page when the first is damaged', async () => {
    const f = join(dir, 'meta0.db')
    const bytes = Buffer.from(readFileSync(REAL))
    bytes[16 + 20] ^= 0xff // inside meta 0: its checksum no longer matches
    writeFileSync(f, bytes)
    expect((await readBoltFacts(f)).revision).toBeGreaterThan(0)
  })

  it('refuses a file that is not a bbolt database, or is cut short', async () => {
    const junk = join(dir, 'junk.db')
    writeFileSync(junk, Buffer.alloc(8192, 7))
    await expect(readBoltFacts(junk)).rejects.toBeInstanceOf(BoltFormatError)
    const cut = join(dir, 'cut.db')
    writeFileSync(cut, readFileSync(REAL).subarray(0, 3 * 4096))
    await expect(readBoltFacts(cut)).rejects.toBeInstanceOf(BoltFormatError)
  })
})

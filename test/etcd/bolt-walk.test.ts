// The awk walk of a bbolt file against bolt.ts and etcd's own `snapshot status`,
// under every awk (and od) this machine has: mawk, gawk, busybox. No SSH: the
// script runs in a local sh exactly as in a probe. The database with a deep tree
// and overflow pages is written by a real etcd here.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BoltWalkUnavailable, boltWalkScript, factsFromWalk } from '../../lib/etcd/bolt-walk.ts'
import { BoltFormatError, readBoltFacts, type BoltFacts } from '../../lib/etcd/bolt.ts'
import { sh } from '../../lib/shell/sh.ts'

const REAL = new URL('../fixtures/etcd/snapshot-3.4.23-rev51.db', import.meta.url).pathname
const dir = mkdtempSync(join(tmpdir(), 'bolt-walk-'))

// Each toolset: a dir put first on PATH with `awk` (and for busybox every tool) linked in.
const toolsets: Array<[string, Record<string, string>]> = []
for (const awk of ['/usr/bin/mawk', '/usr/bin/gawk']) if (existsSync(awk)) toolsets.push([awk, { awk }])
if (existsSync('/bin/busybox')) toolsets.push(['busybox', Object.fromEntries(['awk', 'od', 'wc', 'tr', 'sh', 'stat'].map((t) => [t, '/bin/busybox']))])

function pathFor(name: string, links: Record<string, string>): string {
  const bin = join(dir, 'bin-' + name.replace(/\W/g, '_'))
  if (!existsSync(bin)) {
    mkdirSync(bin)
    for (const [tool, target] of Object.entries(links)) symlinkSync(target, join(bin, tool))
  }
  return `${bin}:${process.env.PATH}`
}

function walk(file: string, PATH: string): string {
  const script = sh`BOLT_F=${file}
${boltWalkScript('x.bolt.')}`
  const r = spawnSync(PATH.split(':')[0] + '/sh', ['-c', script.text], { encoding: 'utf8', env: { PATH } })
  if (r.error) {
    // No sh of the toolset's own: the system's.
    return spawnSync('/bin/sh', ['-c', script.text], { encoding: 'utf8', env: { PATH } }).stdout
  }
  return r.stdout
}

const facts = (file: string, PATH: string): BoltFacts => factsFromWalk(walk(file, PATH), 'x.bolt.')

/**
 * The fixture with bucket "key"'s root page moved to page 1,200,000 (4.9 GB into a
 * sparse file), the meta pages' page counts and checksums set to match.
 */
function bigSparseDb(): string {
  const out = join(dir, 'big.db')
  if (existsSync(out)) return out
  const b = Buffer.from(readFileSync(REAL))
  const PS = 4096
  const fnv = (x: Buffer) => {
    let h = 0xcbf29ce484222325n
    for (const c of x) h = BigInt.asUintN(64, (h ^ BigInt(c)) * 0x100000001b3n)
    return h
  }
  const best = [0, 1].sort((i, j) => Number(b.readBigUInt64LE(j * PS + 16 + 48) - b.readBigUInt64LE(i * PS + 16 + 48)))[0]
  const root = Number(b.readBigUInt64LE(best * PS + 16 + 16))
  const r = root * PS
  let keyRoot = 0
  let valueAt = 0
  for (let i = 0; i < b.readUInt16LE(r + 10); i++) {
    const e = r + 16 + i * 16
    const pos = b.readUInt32LE(e + 4)
    const ks = b.readUInt32LE(e + 8)
    if (b.subarray(e + pos, e + pos + ks).toString() === 'key') {
      valueAt = e + pos + ks
      keyRoot = Number(b.readBigUInt64LE(valueAt))
    }
  }
  const P = 1_200_000
  b.writeBigUInt64LE(BigInt(P), valueAt)
  for (const i of [0, 1]) {
    const m = i * PS + 16
    b.writeBigUInt64LE(BigInt(P + 1), m + 40)
    b.writeBigUInt64LE(fnv(b.subarray(m, m + 56)), m + 56)
  }
  const fd = openSync(out, 'w')
  writeSync(fd, b, 0, b.length, 0)
  const page = Buffer.from(b.subarray(keyRoot * PS, (keyRoot + 1) * PS))
  page.writeBigUInt64LE(BigInt(P), 0)
  writeSync(fd, page, 0, PS, P * PS)
  closeSync(fd)
  return out
}

// A member's db with many keys (a tree of several levels in bucket "key"), values
// large enough for overflow pages, and a few deletes, written by etcd 3.4 here.
let bigDb = ''
let etcdSays = 0
const ETCD = '/usr/bin/etcd'

beforeAll(async () => {
  if (!existsSync(ETCD)) return
  const data = join(dir, 'member-data')
  const port = 30000 + Math.floor(Math.random() * 20000)
  const client = `http://127.0.0.1:${port}`
  const etcd = spawn(ETCD, ['--name', 'w', '--data-dir', data, '--listen-client-urls', client, '--advertise-client-urls', client,
    '--listen-peer-urls', `http://127.0.0.1:${port + 1}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${port + 1}`,
    '--initial-cluster', `w=http://127.0.0.1:${port + 1}`, '--snapshot-count', '1000'], { stdio: 'ignore' })
  try {
    const call = async (path: string, body: object) => {
      const r = await fetch(`${client}${path}`, { method: 'POST', body: JSON.stringify(body) })
      if (!r.ok) throw new Error(`${path}: ${r.status}`)
    }
    for (let i = 0; i < 100; i++) {
      try {
        await call('/v3/kv/range', { key: Buffer.from('x').toString('base64') })
        break
      } catch {
        await new Promise((r) => setTimeout(r, 100))
      }
    }
    const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64')
    const puts: Array<() => Promise<void>> = []
    for (let i = 0; i < 3000; i++) puts.push(() => call('/v3/kv/put', { key: b64(`/registry/k${String(i).padStart(5, '0')}`), value: b64(Buffer.alloc(i % 500 === 0 ? 40_000 : 300, i % 251)) }))
    for (let i = 0; i < puts.length; i += 50) await Promise.all(puts.slice(i, i + 50).map((p) => p()))
    await call('/v3/kv/deleterange', { key: b64('/registry/k00001') })
    // The newest revision last in bucket "key": a value of many pages, so the walk's last
    // leaf has overflow pages and its key sits in the first.
    await call('/v3/kv/put', { key: b64('/registry/last'), value: b64(Buffer.alloc(100_000, 9)) })
  } finally {
    etcd.kill('SIGTERM')
    await new Promise((r) => etcd.on('exit', r))
  }
  bigDb = join(data, 'member', 'snap', 'db')
  const copy = join(dir, 'status-copy.db')
  copyFileSync(bigDb, copy)
  const st = JSON.parse(execFileSync('/usr/bin/etcdctl', ['snapshot', 'status', copy, '-w', 'json'], { env: { ...process.env, ETCDCTL_API: '3' }, encoding: 'utf8' }))
  etcdSays = st.revision
}, 60_000)

afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe.each(toolsets)('the awk walk under %s', (name, links) => {
  const PATH = pathFor(name, links)

  it('reads what bolt.ts reads from a snapshot, and from a raw database', async () => {
    expect(facts(REAL, PATH)).toEqual({ revision: 51, consistentIndex: 54 })
    const raw = join(dir, 'raw.db')
    const bytes = readFileSync(REAL)
    writeFileSync(raw, bytes.subarray(0, bytes.length - 32))
    expect(facts(raw, PATH)).toEqual(await readBoltFacts(raw))
  })

  it('reads a member db of several tree levels with overflow pages as etcd does', async () => {
    if (!bigDb) return expect.fail('no etcd binary to write the database')
    const got = facts(bigDb, PATH)
    expect(got).toEqual(await readBoltFacts(bigDb))
    expect(got.revision).toBe(etcdSays)
    expect(got.revision).toBeGreaterThan(3000)
  })

  it('keeps the walk of the valid meta page when the other one is damaged', async () => {
    const f = join(dir, `meta0-${name.replace(/\W/g, '_')}.db`)
    const bytes = Buffer.from(readFileSync(REAL))
    bytes[16 + 20] ^= 0xff // inside meta 0: its checksum no longer matches
    writeFileSync(f, bytes)
    expect(facts(f, PATH)).toEqual(await readBoltFacts(f))
  })

  it('refuses a file that is not a bbolt database, or is cut short, with the reason', () => {
    const junk = join(dir, 'junk.db')
    writeFileSync(junk, Buffer.alloc(8192, 7))
    expect(() => facts(junk, PATH)).toThrow(BoltFormatError)
    const cut = join(dir, 'cut.db')
    writeFileSync(cut, readFileSync(REAL).subarray(0, 3 * 4096))
    expect(() => facts(cut, PATH)).toThrow(/cut short|truncated/)
  })

  it('tells a file it cannot read from a bad one: what it holds is unknown, not damaged', () => {
    expect(() => facts(join(dir, 'absent.db'), PATH)).toThrow(BoltWalkUnavailable)
    expect(() => facts(join(dir, 'absent.db'), PATH)).toThrow(/cannot read the file/)
  })

  it('reads a database larger than 4 GiB (sizes and offsets past 32 bits)', async () => {
    const f = bigSparseDb()
    expect(facts(f, PATH)).toEqual(await readBoltFacts(f))
  })

  it('finds meta page 1 when meta page 0 is zeroed, as bbolt does', async () => {
    const f = join(dir, `meta0-zero-${name.replace(/\W/g, '_')}.db`)
    const bytes = Buffer.from(readFileSync(REAL))
    bytes.fill(0, 0, 4096)
    writeFileSync(f, bytes)
    const want = await readBoltFacts(f)
    expect(want.revision).toBeGreaterThan(0)
    expect(facts(f, PATH)).toEqual(want)
  })

  it('never lets the path become shell text', () => {
    const evil = join(dir, 'a b; touch PWNED $(touch PWNED2) `touch PWNED3`.db')
    copyFileSync(REAL, evil)
    expect(facts(evil, PATH).revision).toBe(51)
    for (const f of ['PWNED', 'PWNED2', 'PWNED3']) expect(existsSync(join(process.cwd(), f)) || existsSync(join(dir, f))).toBe(false)
  })
})

describe('a walk that cannot judge the file', () => {
  it('is unknown, not damage, when awk dies before its end', () => {
    const PATH = pathFor('failing-awk', { awk: '/bin/false' })
    expect(() => facts(REAL, PATH)).toThrow(BoltWalkUnavailable)
  })
})

describe('factsFromWalk', () => {
  const good = walk(REAL, process.env.PATH!)
  it('takes nothing that is not fixed-length hex', () => {
    expect(() => factsFromWalk(good.replace(/(walk\.\d=ok )[0-9a-f]{16}/g, '$1$(reboot)'), 'x.bolt.')).toThrow(/does not parse/)
    expect(() => factsFromWalk(good.replace(/x\.bolt\.done=1\n/, ''), 'x.bolt.')).toThrow(/did not run to its end/)
    expect(() => factsFromWalk('x.bolt.error=awk or od not found\n', 'x.bolt.')).toThrow(BoltWalkUnavailable)
  })
  it('trusts no meta page whose checksum fails, whatever the walk says', () => {
    const forged = good.replace(/(meta\.\d=)([0-9a-f]{2})/g, (_m, k) => `${k}00`)
    expect(() => factsFromWalk(forged, 'x.bolt.')).toThrow(/no valid meta page/)
  })
})

// The awk walk is a second parser of bytes a broken host holds: on damaged files it
// must say what bolt.ts says (the same facts, or an error), never a number bolt.ts
// would not give. Seeded, so a failure names a case that can be run again.
describe('the awk walk against bolt.ts on damaged copies of a real snapshot', () => {
  const PATH = process.env.PATH!
  const base = readFileSync(REAL)
  let seed = 20261125
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31
    return seed % n
  }
  const cases: Array<[string, Buffer]> = []
  for (let i = 0; i < 80; i++) {
    const b = Buffer.from(base)
    const flips = 1 + rand(3)
    const where: number[] = []
    for (let j = 0; j < flips; j++) {
      // Most flips where the walk reads in this file: the headers (flags, count, overflow) and
      // element tables of the root page (5, with the inline buckets) and of bucket "key" (2),
      // and the meta pages' bodies; the rest anywhere.
      const page = [2, 5][rand(2)]
      const at = [page * 4096 + 8 + rand(8), page * 4096 + 16 + rand(900), rand(2) * 4096 + 16 + rand(64), rand(b.length)][rand(4)]
      b[at] ^= 1 + rand(255)
      where.push(at)
    }
    cases.push([`flip at ${where.join(',')}`, b])
  }
  for (const n of [4096, 8192 + 100, 5 * 4096, base.length - 33]) cases.push([`cut to ${n}`, base.subarray(0, n)])
  {
    // The last element of bucket "key" (page 2) says its value runs past the page: bolt.ts refuses it.
    const b = Buffer.from(base)
    const count = b.readUInt16LE(2 * 4096 + 10)
    b.writeUInt32LE(0x7fffffff, 2 * 4096 + 16 + (count - 1) * 16 + 12)
    cases.push(['the newest key\'s value past its page', b])
  }

  it.each(cases)('%s', async (_name, bytes) => {
    const f = join(dir, 'fuzz.db')
    writeFileSync(f, bytes)
    const want = await readBoltFacts(f).then((x) => x, (e: Error) => e)
    let got: BoltFacts | Error
    try {
      got = facts(f, PATH)
    } catch (e) {
      got = e as Error
    }
    if (want instanceof Error) expect(got, `bolt.ts: ${want.message}`).toBeInstanceOf(Error)
    else expect(got).toEqual(want)
  })
})

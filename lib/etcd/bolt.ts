// Reads the two numbers a recovery must compare from an etcd database file
// (a snapshot or a copy of member/snap/db) here, without etcd's tools and
// without sending it anywhere: the revision (what `snapshot status` calls
// revision: the main revision of the last key in bucket "key") and the raft
// index it was taken at (bucket "meta", key "consistent_index").
//
// Why not ask a host's etcdutl? Because the comparison with the survivors must
// be made before anything is copied anywhere, and a bbolt B+tree can be walked
// by reading a handful of pages: a few milliseconds against a round trip and an
// upload. Layout (go.etcd.io/bbolt page.go, meta.go, bucket.go): pages of
// `pageSize` bytes, a 16-byte header (id u64, flags u16, count u16, overflow
// u32) then `count` 16-byte elements; two meta pages (0 and 1), the valid one
// with the higher txid wins; a bucket value is (root pgid u64, sequence u64)
// followed, when root is 0, by an inline page. Everything is little-endian
// except etcd's own keys and values (big-endian).
import { open } from 'node:fs/promises'

const MAGIC = 0xed0cdaed
const BRANCH = 0x01
const LEAF = 0x02
const BUCKET_LEAF = 0x01

export interface BoltFacts {
  /** Main revision of the newest key: the `revision` etcd's `snapshot status` reports. */
  revision: number
  /** The raft index the database was written at (0 when etcd never wrote one). */
  consistentIndex: number
}

/** The file is not a readable etcd bbolt database. */
export class BoltFormatError extends Error {}

/** One page as a buffer; `inline` pages live inside a bucket value. */
type Page = { buf: Buffer; at: number }

/** Where pages come from: a local file (a FileHandle is one). */
interface PageSource {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>
}

export async function readBoltFacts(path: string): Promise<BoltFacts> {
  const fh = await open(path, 'r')
  try {
    return await readBoltFactsFrom(fh)
  } finally {
    await fh.close()
  }
}

/** The same read from any page source: only the pages the walk needs are read. */
async function readBoltFactsFrom(source: PageSource): Promise<BoltFacts> {
  {
    const reader = new PageReader(source)
    await reader.init()
    const keyBucket = await reader.bucket('key')
    const metaBucket = await reader.bucket('meta')
    if (!keyBucket) throw new BoltFormatError('no "key" bucket: not an etcd v3 database')
    const lastKey = await reader.lastKey(keyBucket)
    const ci = metaBucket ? await reader.get(metaBucket, Buffer.from('consistent_index')) : undefined
    return {
      revision: lastKey && lastKey.length >= 8 ? toNumber(lastKey.readBigUInt64BE(0)) : 0,
      consistentIndex: ci && ci.length === 8 ? toNumber(ci.readBigUInt64BE(0)) : 0,
    }
  }
}

export function toNumber(n: bigint): number {
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new BoltFormatError(`value ${n} is out of range`)
  return Number(n)
}

/**
 * A meta page's 64-byte body (what follows its 16-byte page header), if its
 * magic, version, checksum and page size are valid.
 */
export function parseMeta(m: Buffer): { pageSize: number; root: bigint; pgid: bigint; txid: bigint } | undefined {
  if (m.length < 64) return undefined
  if (m.readUInt32LE(0) !== MAGIC || m.readUInt32LE(4) !== 2) return undefined
  if (fnv64a(m.subarray(0, 56)) !== m.readBigUInt64LE(56)) return undefined
  const pageSize = m.readUInt32LE(8)
  if (pageSize < 512 || pageSize > 1 << 16) return undefined
  return { pageSize, root: m.readBigUInt64LE(16), pgid: m.readBigUInt64LE(40), txid: m.readBigUInt64LE(48) }
}

function isPageSize(n: number): boolean {
  return n >= 512 && n <= 1 << 16 && (n & (n - 1)) === 0
}

/** FNV-1a 64, bbolt's meta checksum. */
function fnv64a(b: Buffer): bigint {
  let h = 0xcbf29ce484222325n
  for (const byte of b) h = BigInt.asUintN(64, (h ^ BigInt(byte)) * 0x100000001b3n)
  return h
}

class PageReader {
  private pageSize = 4096
  private root = 0n
  private pages = 0n
  constructor(private fh: PageSource) {}

  async init(): Promise<void> {
    const head = Buffer.alloc(4096 * 2)
    const { bytesRead } = await this.fh.read(head, 0, head.length, 0)
    const first = this.meta(head, 0, bytesRead)
    if (!first && bytesRead < 64) throw new BoltFormatError('file too short for a bbolt header')
    // The page size meta page 0 states; when it states none (meta 0 damaged), the first of
    // the usual ones at which meta page 1 sits, as bbolt falls back to the OS's (the awk walk
    // in bolt-walk.ts chooses the same way).
    const stated = first?.pageSize ?? head.readUInt32LE(16 + 8)
    this.pageSize = isPageSize(stated) ? stated : await this.metaOnePageSize()
    const secondBuf = Buffer.alloc(this.pageSize)
    const second = (await this.fh.read(secondBuf, 0, this.pageSize, this.pageSize)).bytesRead >= 80 ? this.meta(secondBuf, 0, this.pageSize) : undefined
    const best = [first, second].filter((m): m is NonNullable<typeof m> => Boolean(m)).sort((a, b) => (a.txid > b.txid ? -1 : 1))[0]
    if (!best) throw new BoltFormatError('no valid meta page (bad magic or checksum)')
    this.root = best.root
    this.pages = best.pgid
  }

  private async metaOnePageSize(): Promise<number> {
    for (const size of [4096, 16384, 65536]) {
      const magic = Buffer.alloc(4)
      if ((await this.fh.read(magic, 0, 4, size + 16)).bytesRead === 4 && magic.readUInt32LE(0) === MAGIC) return size
    }
    throw new BoltFormatError('no meta page: not a bbolt database')
  }

  private meta(buf: Buffer, at: number, len: number) {
    if (len < at + 16 + 64) return undefined
    return parseMeta(buf.subarray(at + 16, at + 16 + 64))
  }

  private async page(pgid: bigint): Promise<Page> {
    if (pgid < 2n || pgid >= this.pages) throw new BoltFormatError(`page id ${pgid} out of range`)
    const head = Buffer.alloc(16)
    const pos = Number(pgid) * this.pageSize
    await this.fh.read(head, 0, 16, pos)
    const overflow = head.readUInt32LE(12)
    if (overflow > 1 << 20) throw new BoltFormatError(`page ${pgid}: overflow ${overflow}`)
    const buf = Buffer.alloc(this.pageSize * (overflow + 1))
    const { bytesRead } = await this.fh.read(buf, 0, buf.length, pos)
    if (bytesRead < buf.length) throw new BoltFormatError(`page ${pgid} is cut short: the file is truncated`)
    return { buf, at: 0 }
  }

  /** The page a bucket value points to: its root page, or the page inline after the header. */
  private async bucketRoot(value: Buffer): Promise<Page> {
    if (value.length < 16) throw new BoltFormatError('bucket header too short')
    const root = value.readBigUInt64LE(0)
    return root === 0n ? { buf: value, at: 16 } : this.page(root)
  }

  private header(p: Page) {
    const flags = p.buf.readUInt16LE(p.at + 8)
    const count = p.buf.readUInt16LE(p.at + 10)
    if (!(flags & (BRANCH | LEAF))) throw new BoltFormatError(`not a tree page (flags ${flags})`)
    if (p.at + 16 + count * 16 > p.buf.length) throw new BoltFormatError('page elements past its end')
    return { leaf: (flags & LEAF) !== 0, count }
  }

  private slice(p: Page, elem: number, off: number, len: number): Buffer {
    const start = elem + off
    if (start < p.at || start + len > p.buf.length) throw new BoltFormatError('element points outside its page')
    return p.buf.subarray(start, start + len)
  }

  private branch(p: Page, i: number) {
    const e = p.at + 16 + i * 16
    return { key: this.slice(p, e, p.buf.readUInt32LE(e), p.buf.readUInt32LE(e + 4)), child: p.buf.readBigUInt64LE(e + 8) }
  }

  private leaf(p: Page, i: number) {
    const e = p.at + 16 + i * 16
    const [flags, pos, ksize, vsize] = [p.buf.readUInt32LE(e), p.buf.readUInt32LE(e + 4), p.buf.readUInt32LE(e + 8), p.buf.readUInt32LE(e + 12)]
    return { flags, key: this.slice(p, e, pos, ksize), value: this.slice(p, e, pos + ksize, vsize) }
  }

  /** The leaf element for `key` in the tree rooted at `p`, if present. */
  private async find(p: Page, key: Buffer, depth = 0): Promise<ReturnType<PageReader['leaf']> | undefined> {
    if (depth > 64) throw new BoltFormatError('tree deeper than 64 levels: a loop?')
    const h = this.header(p)
    if (h.leaf) {
      for (let i = 0; i < h.count; i++) {
        const el = this.leaf(p, i)
        if (el.key.equals(key)) return el
      }
      return undefined
    }
    // The last child whose first key is <= key.
    let child = h.count ? this.branch(p, 0).child : undefined
    for (let i = 1; i < h.count; i++) {
      const el = this.branch(p, i)
      if (Buffer.compare(el.key, key) <= 0) child = el.child
      else break
    }
    return child === undefined ? undefined : this.find(await this.page(child), key, depth + 1)
  }

  async bucket(name: string): Promise<Page | undefined> {
    const el = await this.find(await this.page(this.root), Buffer.from(name))
    if (!el) return undefined
    if (!(el.flags & BUCKET_LEAF)) throw new BoltFormatError(`"${name}" is not a bucket`)
    return this.bucketRoot(el.value)
  }

  async get(bucket: Page, key: Buffer): Promise<Buffer | undefined> {
    const el = await this.find(bucket, key)
    return el && !(el.flags & BUCKET_LEAF) ? el.value : undefined
  }

  /** The greatest key of a bucket: the rightmost element of the rightmost leaf. */
  async lastKey(p: Page, depth = 0): Promise<Buffer | undefined> {
    if (depth > 64) throw new BoltFormatError('tree deeper than 64 levels: a loop?')
    const h = this.header(p)
    if (!h.count) return undefined
    if (h.leaf) return this.leaf(p, h.count - 1).key
    return this.lastKey(await this.page(this.branch(p, h.count - 1).child), depth + 1)
  }
}

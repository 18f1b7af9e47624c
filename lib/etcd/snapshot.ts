// Local checks of a snapshot file before anything is sent anywhere (FIELD-NOTES,
// "The snapshot file"): `snapshot save` appends the SHA-256 of the bbolt file as
// a 32-byte trailer (detected by size % 512 == 32); a raw member/snap/db copy
// has none. One streaming pass computes both the trailer check and the hash of
// the whole file, which later verifies each host's copy.
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { open, stat } from 'node:fs/promises'
import { InputError } from '../errors.ts'

export interface SnapshotInfo {
  path: string
  size: number
  /** SHA-256 of the whole file as it will sit on each host. */
  sha256: string
  /** Whether the file ends with etcd's integrity trailer. */
  hasTrailer: boolean
  /** bbolt page size from the header. */
  pageSize: number
  /** The member whose host holds the file at `path` (--snapshot HOST:PATH); absent: a local file. */
  host?: string
}

const BOLT_MAGIC = 0xed0cdaed

export async function inspectSnapshot(path: string, options: { skipHashCheck?: boolean } = {}): Promise<SnapshotInfo> {
  let size: number
  try {
    const st = await stat(path)
    if (!st.isFile()) throw new InputError(`${path} is not a regular file`, { where: path })
    size = st.size
  } catch (err) {
    if (err instanceof InputError) throw err
    throw new InputError(`cannot read snapshot: ${(err as Error).message}`, { where: path })
  }

  const head = Buffer.alloc(32)
  const fh = await open(path, 'r')
  try {
    await fh.read(head, 0, 32, 0)
  } finally {
    await fh.close()
  }
  if (size < 4096 || head.readUInt32LE(16) !== BOLT_MAGIC) {
    throw new InputError('this is not an etcd snapshot (no bbolt database header)', {
      where: path,
      hint: 'Give the file written by `etcdctl snapshot save` (or a copy of member/snap/db with --skip-hash-check).',
    })
  }
  const pageSize = head.readUInt32LE(24)
  const hasTrailer = size % 512 === 32

  // One pass, one hash: the body's, whose state is copied at the body's end to go on
  // over the trailer into the whole file's (the hash every copy is checked against).
  const whole = createHash('sha256')
  const bodyEnd = hasTrailer ? size - 32 : size
  const trailer = Buffer.alloc(32)
  let pos = 0
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    const inBody = Math.max(0, Math.min(chunk.length, bodyEnd - pos))
    if (inBody > 0) whole.update(chunk.subarray(0, inBody))
    if (inBody < chunk.length) chunk.copy(trailer, pos + inBody - bodyEnd, inBody)
    pos += chunk.length
  }
  const body = whole.copy()
  if (hasTrailer) whole.update(trailer)

  if (hasTrailer) {
    const actual = body.digest('hex')
    const expected = trailer.toString('hex')
    if (actual !== expected) {
      throw new InputError(`snapshot integrity check failed: the file's trailer says sha256 ${expected}, its content hashes to ${actual}`, {
        where: path,
        hint: 'The file is corrupt or truncated. Take or fetch the snapshot again; do not restore this one.',
      })
    }
  } else if (!options.skipHashCheck) {
    throw new InputError('snapshot has no integrity trailer (a raw copy of member/snap/db?)', {
      where: path,
      hint: 'etcd cannot verify such a file. If you trust it, pass --skip-hash-check.',
    })
  }
  return { path, size, sha256: whole.digest('hex'), hasTrailer, pageSize }
}

// `cluster load`: N keys of varied sizes, written through the v3 JSON gateway
// with bounded concurrency, spread over the members. Content is a pure function
// of (seed, index), so a later check can recompute it, and a manifest of
// key → sha256(value) is returned (and written if asked) to compare a restored
// cluster against.
import { createCipheriv, createHash } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import pLimit from 'p-limit'
import { InputError } from '../errors.ts'
import { kvPut } from './etcd-http.ts'
import { openLab, type LabRef } from './open.ts'

export interface ClusterLoadOptions {
  /** How many keys. Required, 1..1,000,000. */
  keys: number
  /** Content seed: same seed, same keys and values. Default "etcd-rescue". */
  seed?: string
  /** Key prefix. Default /etcd-rescue/load/. */
  prefix?: string
  /** Puts in flight at once. Default 16. */
  concurrency?: number
  /** Also write the manifest (JSON object key → sha256 hex) to this file. Default: not written. */
  manifestFile?: string
}

export interface ClusterLoadResult {
  keys: number
  bytes: number
  /** Highest revision a put returned. */
  revision: number
  /** key → sha256 (hex) of its value. */
  manifest: Record<string, string>
  manifestFile?: string
  elapsedMs: number
}

/** Size classes: mostly small values, some KiB-sized, a few large ones (etcd's default request limit is 1.5 MiB). */
const SIZE_CLASSES: ReadonlyArray<[percentUpTo: number, min: number, max: number]> = [
  [60, 16, 1024],
  [90, 1024, 16 * 1024],
  [99, 16 * 1024, 128 * 1024],
  [100, 128 * 1024, 512 * 1024],
]

export function loadKey(prefix: string, index: number): string {
  return `${prefix}${String(index).padStart(7, '0')}`
}

/** The value of key `index` under `seed`: its size and bytes are both derived from the seed. */
export function loadValue(seed: string, index: number): Buffer {
  const digest = createHash('sha256').update(`${seed}\0${index}`).digest()
  const pick = digest.readUInt32BE(0) % 100
  const [, min, max] = SIZE_CLASSES.find(([upTo]) => pick < upTo)!
  const size = min + (digest.readUInt32BE(4) % (max - min + 1))
  // AES-256-CTR over zeros is a fast deterministic byte stream keyed by the digest.
  const cipher = createCipheriv('aes-256-ctr', digest, Buffer.alloc(16))
  return Buffer.concat([cipher.update(Buffer.alloc(size)), cipher.final()])
}

export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

export async function clusterLoad(lab: LabRef, options: ClusterLoadOptions): Promise<ClusterLoadResult> {
  const t0 = Date.now()
  const count = options.keys
  if (!Number.isInteger(count) || count < 1 || count > 1_000_000) throw new InputError(`--keys must be 1 to 1000000, got ${count}`)
  const concurrency = options.concurrency ?? 16
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) throw new InputError(`--concurrency must be 1 to 256, got ${concurrency}`)
  const seed = options.seed ?? 'etcd-rescue'
  const prefix = options.prefix ?? '/etcd-rescue/load/'
  const { state } = openLab(lab)
  const addresses = state.hosts.map((h) => h.address)
  const limit = pLimit(concurrency)
  const manifest: Record<string, string> = {}
  let bytes = 0
  let revision = 0
  await Promise.all(Array.from({ length: count }, (_, k) => limit(async () => {
    const key = loadKey(prefix, k + 1)
    const value = loadValue(seed, k + 1)
    const rev = await putWithRetry(addresses, k, Buffer.from(key), value)
    manifest[key] = sha256Hex(value)
    bytes += value.length
    revision = Math.max(revision, rev)
  })))
  // Keys in order, so two manifests of the same load are byte-identical.
  const sorted = Object.fromEntries(Object.keys(manifest).sort().map((k) => [k, manifest[k]]))
  if (options.manifestFile) writeFileSync(options.manifestFile, `${JSON.stringify(sorted, null, 1)}\n`)
  return { keys: count, bytes, revision, manifest: sorted, manifestFile: options.manifestFile, elapsedMs: Date.now() - t0 }
}

/** Round-robin over members; a failed put (e.g. during a leader election) moves on to the next, 5 tries. */
async function putWithRetry(addresses: string[], k: number, key: Buffer, value: Buffer): Promise<number> {
  let last: unknown
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      return await kvPut(addresses[(k + attempt) % addresses.length], key, value)
    } catch (e) {
      last = e
      await new Promise((r) => setTimeout(r, 100 * (attempt + 1)))
    }
  }
  throw last
}

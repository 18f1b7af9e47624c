// A known data set: N keys of varied sizes whose content is a pure function of
// (seed, index), written through etcd's JSON gateway and later read back from
// every member and compared byte for byte (by SHA-256) with what was written.
// The lab's `cluster load` and drills both use it; drills reach the gateway
// through SSH from each member's own host, so they work on any inventory.
import { createCipheriv, createHash } from 'node:crypto'
import pLimit from 'p-limit'
import { remoteGateway, type Gateway } from '../etcd/gateway.ts'
import type { SshHost } from '../ssh/connection.ts'
import type { TlsFiles } from '../etcd/etcdctl.ts'

export const DRILL_PREFIX = '/etcd-rescue/drill/'

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

export interface Dataset {
  seed: string
  prefix: string
  /** key → sha256 hex of its value, as written. */
  digests: Map<string, string>
  bytes: number
  revision: number
}

export interface Endpoint {
  name: string
  host: SshHost
  clientUrl: string
  /** TLS files on the member's host (etcdctl's), for an https client URL. */
  tls?: TlsFiles
}

/** The member's gateway, reached from its own host through SSH (TLS files read off the host once, kept in memory). */
export function gatewayFor(e: Endpoint): Gateway {
  return remoteGateway(e.host, e.clientUrl, e.tls)
}

export interface WriteOptions {
  keys: number
  seed: string
  prefix?: string
  /** Puts in flight at once. Default 16. */
  concurrency?: number
  onProgress?: (done: number) => void
}

/** Writes the data set, spreading puts over the members; a failed put (a leader election) retries on the next one, 5 tries. */
export async function writeDataset(gateways: Gateway[], o: WriteOptions): Promise<Dataset> {
  const prefix = o.prefix ?? DRILL_PREFIX
  const limit = pLimit(o.concurrency ?? 16)
  const digests = new Map<string, string>()
  let bytes = 0
  let revision = 0
  let done = 0
  await Promise.all(Array.from({ length: o.keys }, (_, k) => limit(async () => {
    const key = loadKey(prefix, k + 1)
    const value = loadValue(o.seed, k + 1)
    let last: unknown
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        revision = Math.max(revision, await gateways[(k + attempt) % gateways.length].put(key, value))
        digests.set(key, sha256Hex(value))
        bytes += value.length
        o.onProgress?.(++done)
        return
      } catch (err) {
        last = err
        await new Promise((r) => setTimeout(r, 100 * (attempt + 1)))
      }
    }
    throw last
  })))
  // Keys in order, so two manifests of the same load are byte-identical.
  const sorted = new Map([...digests].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
  return { seed: o.seed, prefix, digests: sorted, bytes, revision }
}

export interface DatasetCheck {
  member: string
  keysFound: number
  missing: string[]
  different: string[]
  unexpected: string[]
}

/** Reads every key of the data set from one member alone and compares each value's digest. */
export async function checkDataset(e: Endpoint, data: Dataset): Promise<DatasetCheck> {
  const kvs = await gatewayFor(e).rangePrefix(data.prefix, { serializable: true })
  const seen = new Map(kvs.map((kv) => [kv.key.toString(), sha256Hex(kv.value)]))
  const missing: string[] = []
  const different: string[] = []
  for (const [key, digest] of data.digests) {
    const got = seen.get(key)
    if (got === undefined) missing.push(key)
    else if (got !== digest) different.push(key)
  }
  const unexpected = [...seen.keys()].filter((k) => !data.digests.has(k))
  return { member: e.name, keysFound: seen.size, missing, different, unexpected }
}

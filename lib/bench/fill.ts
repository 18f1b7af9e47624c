// A cluster of a given size, fast: the bench needs snapshots of 100 MB to 1 GB,
// and the lab's `cluster load` (varied values, 12.6 KB on average, for drills
// that read every key back) would take ~85,000 puts for 1 GB. Here values are
// 768 KiB of incompressible bytes (AES-CTR keyed by a random key, so a snapshot
// cannot be made smaller by compression either), well under etcd's 1.5 MiB
// request limit: ~1,400 puts per GB, a few in flight.
import { createCipheriv, createHash, randomBytes } from 'node:crypto'
import pLimit from 'p-limit'
import type { Gateway } from '../etcd/gateway.ts'
import { kubeObject } from './kube.ts'

export const FILL_VALUE_BYTES = 768 * 1024
export const FILL_PREFIX = '/etcd-rescue/bench/'
/**
 * A snapshot of such values is about this much larger than the values (bbolt's
 * pages and free pages: 101 MiB of values gave a 125 MiB snapshot on etcd 3.5.30).
 */
export const FILL_OVERHEAD = 1.24

/** How many values of FILL_VALUE_BYTES make a snapshot of about `bytes` (at least one). */
export function fillKeys(bytes: number): number {
  return Math.max(1, Math.round(bytes / FILL_OVERHEAD / FILL_VALUE_BYTES))
}

/** Writes values for a snapshot of about `bytes` over the gateways (round robin, a failed put retried on the next). */
export async function fillCluster(gateways: Gateway[], bytes: number, o: { concurrency?: number; onProgress?: (done: number, of: number) => void } = {}): Promise<{ keys: number; bytes: number }> {
  const keys = fillKeys(bytes)
  const limit = pLimit(o.concurrency ?? 4)
  const key = randomBytes(32)
  let done = 0
  await Promise.all(Array.from({ length: keys }, (_, k) => limit(async () => {
    // A key of its own per value: one keystream at shifted counters would make every
    // value a shifted copy of the one before, which a compressor with a long window finds.
    const value = createCipheriv('aes-256-ctr', createHash('sha256').update(key).update(String(k)).digest(), Buffer.alloc(16)).update(Buffer.alloc(FILL_VALUE_BYTES))
    await putRoundRobin(gateways, k, `${FILL_PREFIX}${String(k).padStart(7, '0')}`, value)
    if (++done % 100 === 0) o.onProgress?.(done, keys)
  })))
  return { keys, bytes: keys * FILL_VALUE_BYTES }
}

/** The k-th put of a fill: on gateway k (round robin), a failed one retried on the next, up to 5 times. */
async function putRoundRobin(gateways: Gateway[], k: number, key: string, value: Buffer): Promise<void> {
  let last: unknown
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      await gateways[(k + attempt) % gateways.length].put(key, value)
      return
    } catch (err) {
      last = err
      await new Promise((r) => setTimeout(r, 200 * (attempt + 1)))
    }
  }
  throw last
}

/**
 * A snapshot of Kubernetes-like objects (kube.ts) is about this much larger than
 * their values (keys, mvcc metadata, bbolt's pages).
 */
export const KUBE_OVERHEAD = 1.3

/** Writes Kubernetes-like objects (kube.ts) for a snapshot of about `bytes`, several in flight, over the gateways. */
export async function fillKube(gateways: Gateway[], bytes: number, o: { concurrency?: number; seed?: string; onProgress?: (done: number) => void } = {}): Promise<{ keys: number; bytes: number }> {
  const limit = pLimit(o.concurrency ?? 16)
  const want = bytes / KUBE_OVERHEAD
  let queued = 0
  let keys = 0
  const seed = o.seed ?? 'etcd-rescue-bench'
  const puts: Array<Promise<void>> = []
  for (let k = 0; queued < want; k++) {
    queued += kubeObject(seed, k).value.length
    keys++
    // Made again when its turn comes: a 1 GB data set is not held in memory at once.
    puts.push(limit(async () => {
      const obj = kubeObject(seed, k)
      await putRoundRobin(gateways, k, obj.key, obj.value)
      if ((k + 1) % 2000 === 0) o.onProgress?.(k + 1)
    }))
  }
  await Promise.all(puts)
  return { keys, bytes: queued }
}

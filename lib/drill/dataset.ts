// The drill's known data set: N keys of varied sizes whose content is a pure
// function of (seed, index), written through etcd's JSON gateway and later read
// back from every member and compared byte for byte (by SHA-256) with what was
// written. Traffic goes through SSH from each member's own host, so the same
// code works on the lab and on a staging inventory.
import pLimit from 'p-limit'
import { Gateway } from '../etcd/gateway.ts'
import { loadKey, loadValue, sha256Hex } from '../lab/load.ts'
import type { SshHost } from '../ssh/connection.ts'

export const DRILL_PREFIX = '/etcd-rescue/drill/'

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
}

export function gatewayFor(e: Endpoint): Gateway {
  const u = new URL(e.clientUrl)
  return new Gateway(e.clientUrl, () => e.host.forward(u.hostname, Number(u.port)))
}

/** Writes the data set, spreading puts over the members; a failed put retries on the next member. */
export async function writeDataset(endpoints: Endpoint[], keys: number, seed: string, onProgress?: (done: number) => void): Promise<Dataset> {
  const gateways = endpoints.map(gatewayFor)
  const limit = pLimit(16)
  const digests = new Map<string, string>()
  let bytes = 0
  let revision = 0
  let done = 0
  await Promise.all(Array.from({ length: keys }, (_, k) => limit(async () => {
    const key = loadKey(DRILL_PREFIX, k + 1)
    const value = loadValue(seed, k + 1)
    let last: unknown
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        revision = Math.max(revision, await gateways[(k + attempt) % gateways.length].put(key, value))
        digests.set(key, sha256Hex(value))
        bytes += value.length
        onProgress?.(++done)
        return
      } catch (err) {
        last = err
        await new Promise((r) => setTimeout(r, 100 * (attempt + 1)))
      }
    }
    throw last
  })))
  return { seed, prefix: DRILL_PREFIX, digests, bytes, revision }
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

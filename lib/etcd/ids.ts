// etcd's member and cluster IDs, computed the way etcd computes them
// (server/etcdserver/api/membership), so a plan can predict them and the
// verification can prove every member joined the cluster we meant to create.
import { createHash } from 'node:crypto'

/** First 8 bytes (big-endian) of sha1(sorted peer URLs joined with "" + token). */
export function memberId(peerUrls: string[], token: string): bigint {
  const b = Buffer.from([...peerUrls].sort().join('') + token)
  return createHash('sha1').update(b).digest().readBigUInt64BE(0)
}

/** First 8 bytes of sha1 over the sorted member IDs as big-endian u64s. */
export function clusterId(memberIds: bigint[]): bigint {
  const sorted = [...memberIds].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  const buf = Buffer.alloc(8 * sorted.length)
  sorted.forEach((id, i) => buf.writeBigUInt64BE(id, i * 8))
  return createHash('sha1').update(buf).digest().readBigUInt64BE(0)
}

/** etcd prints IDs in hex in logs and member list tables. */
export function hexId(id: bigint): string {
  return id.toString(16)
}

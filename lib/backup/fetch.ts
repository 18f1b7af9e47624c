// Brings a file from a host to this machine: streamed over the SSH channel
// into FILE.part (mode 0600), checked as an etcd snapshot, then renamed, so a
// half-fetched or corrupt file never carries the final name. Used by backups
// and by recover --from-survivors.
import { createWriteStream } from 'node:fs'
import { rename, rm } from 'node:fs/promises'
import { finished } from 'node:stream/promises'
import { inspectSnapshot, type SnapshotInfo } from '../etcd/snapshot.ts'
import { sh } from '../shell/sh.ts'
import type { SshHost } from '../ssh/connection.ts'
import { formatBytes, formatRate } from '../task/format.ts'

export interface FetchOptions {
  /** Expected size, for progress. */
  size: number
  /** A raw member/snap/db has no integrity trailer: accept it (--skip-hash-check semantics). */
  raw?: boolean
  onProgress?: (text: string) => void
}

export async function fetchSnapshot(host: SshHost, remote: string, file: string, o: FetchOptions): Promise<SnapshotInfo> {
  const part = `${file}.part`
  const out = createWriteStream(part, { mode: 0o600 })
  let got = 0
  const t1 = Date.now()
  out.on('pipe', (src) => src.on('data', (d: Buffer) => {
    got += d.length
    o.onProgress?.(`${formatBytes(got)} of ${formatBytes(o.size)}, ${formatRate(got, (Date.now() - t1) / 1000)}`)
  }))
  try {
    await host.exec(sh`cat ${remote}`, { stdout: out })
  } finally {
    out.end()
    await finished(out).catch(() => {})
  }
  let snapshot: SnapshotInfo
  try {
    snapshot = await inspectSnapshot(part, { skipHashCheck: o.raw })
  } catch (err) {
    await rm(part, { force: true })
    throw err
  }
  await rename(part, file)
  return { ...snapshot, path: file }
}

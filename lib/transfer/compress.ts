// zstd on the operator's leg of a relay. Measured here (README, "How fast"): on a
// Kubernetes-like snapshot zstd -1 shrinks 6x at ~500 MB/s on one core, so on a
// 100 Mbit/s or 1 Gbit/s link the copy to the relay source takes a fraction of the
// time; gzip is 5x slower to compress and pays only on slow links, so it is not
// used. Only when both ends have zstd: a host without it sends its upload script's
// NO_ZSTD before reading anything, and gets the file plain.
import { spawn, spawnSync } from 'node:child_process'
import type { Readable } from 'node:stream'

let here: boolean | undefined

/** Whether this machine has zstd (asked once). */
export function localZstd(): boolean {
  here ??= spawnSync('zstd', ['--version'], { stdio: 'ignore' }).status === 0
  return here
}

/** The file, zstd -1 compressed on one thread, as a stream (a failed zstd ends it early: the host's hash check fails). */
export function zstdStream(file: string): Readable {
  const child = spawn('zstd', ['-1', '-T1', '-q', '-c', '--', file], { stdio: ['ignore', 'pipe', 'ignore'] })
  child.stdout.on('close', () => child.kill())
  return child.stdout
}

// Where things go on a member host. Everything etcd-rescue writes lives in one
// work directory next to the data dir (same filesystem, so moves are renames),
// named after the data dir so two members' data dirs on one host never share it.
import { posix } from 'node:path'

export interface MemberPaths {
  dataDir: string
  /** The data dir's parent: holds the work dir and, unless a mount point, the old data. */
  parent: string
  work: string
  /** The snapshot's final name on the host; named by content so another snapshot never collides. */
  snapshot: string
  /** Upload target, renamed to `snapshot` once proven (its SHA-256, or zstd's checksum of bytes hashed as sent). */
  part: string
  /** Where `snapshot restore` writes before the result is moved into place. */
  restoreTmp: string
  /** Journal of what this tool did to the data dir (set aside, restored). */
  state: string
  /** Where the old data goes (a sibling dir, or a dir inside a mount point). */
  aside: string
}

export function memberPaths(dataDir: string, snapshotSha: string, token: string, stamp: string, mountpoint: boolean): MemberPaths {
  const clean = dataDir.replace(/\/+$/, '') || '/'
  const parent = posix.dirname(clean)
  const base = posix.basename(clean)
  const work = posix.join(parent, `.etcd-rescue-${base}`)
  const snapshot = posix.join(work, `snapshot-${snapshotSha.slice(0, 16)}.db`)
  return {
    dataDir: clean,
    parent,
    work,
    snapshot,
    part: `${snapshot}.part`,
    // On a mount point the restore is written inside it, so moving it in is a rename on that disk, not a copy.
    restoreTmp: mountpoint ? posix.join(clean, `.etcd-rescue-restore-${token}`) : posix.join(work, `restore-${token}`),
    state: posix.join(work, 'state'),
    // A mount point cannot be renamed: its contents move into a dir on the same disk.
    aside: mountpoint ? posix.join(clean, `etcd-rescue-old-${stamp}`) : `${clean}.etcd-rescue-old-${stamp}`,
  }
}

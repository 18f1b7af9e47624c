// The etcd versions a lab can run and where each comes from. 3.4.23 is Debian
// bookworm's package, installed on the machine (/usr/bin). The 3.5 releases are
// Debian's own packages from a later suite, fetched once with apt-get download
// under a private apt state (etcd-fetch.ts) and unpacked into a cache: the
// machine's apt sources and installed packages are never touched.
import { InputError } from '../errors.ts'

export interface EtcdRelease {
  version: string
  /** Debian suite that carries it; undefined = the machine's own package. */
  suite?: 'trixie' | 'sid'
  /** Where the binaries are on a lab host. */
  hostBinDir: string
}

export const ETCD_RELEASES: readonly EtcdRelease[] = [
  { version: '3.4.23', hostBinDir: '/usr/bin' },
  { version: '3.5.16', suite: 'trixie', hostBinDir: '/usr/local/bin' },
  { version: '3.5.30', suite: 'sid', hostBinDir: '/usr/local/bin' },
]

export const DEFAULT_ETCD_VERSION = '3.4.23'

export function etcdRelease(version: string): EtcdRelease {
  const release = ETCD_RELEASES.find((r) => r.version === version)
  if (!release) {
    throw new InputError(`unknown etcd version ${JSON.stringify(version)}`, {
      hint: `The lab runs ${ETCD_RELEASES.map((r) => r.version).join(', ')}.`,
    })
  }
  return release
}

/** Binaries a host gets: etcdutl only exists from 3.5 on. */
export function etcdBinaries(version: string): string[] {
  return version.startsWith('3.4.') ? ['etcd', 'etcdctl'] : ['etcd', 'etcdctl', 'etcdutl']
}

/** The version `etcd --version` prints on its first line ("etcd Version: 3.5.30"). */
export function parseEtcdVersion(output: string): string | undefined {
  return /etcd Version:\s*(\S+)/.exec(output)?.[1]
}

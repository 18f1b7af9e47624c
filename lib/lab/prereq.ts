// What the lab needs from the machine, checked before anything is changed, so a
// missing piece is a clear error naming the apt-get command, not a half-built lab.
import { accessSync, constants, existsSync, readFileSync } from 'node:fs'
import { delimiter, join } from 'node:path'
import { InputError } from '../errors.ts'

/** Program → Debian package that provides it. */
const PROGRAMS: ReadonlyArray<[string, string]> = [
  ['ip', 'iproute2'],
  ['unshare', 'util-linux'],
  ['pivot_root', 'util-linux'],
  ['tini', 'tini'],
  ['sshd', 'openssh-server'],
  ['ssh', 'openssh-client'],
  ['ssh-keygen', 'openssh-client'],
]

const ETCD_34: ReadonlyArray<[string, string]> = [
  ['etcd', 'etcd-server'],
  ['etcdctl', 'etcd-client'],
]

const SYSTEMD: ReadonlyArray<[string, string]> = [
  ['systemctl', 'systemd'],
  ['dbus-daemon', 'dbus'],
  ['sudo', 'sudo'],
  ['useradd', 'passwd'],
  ['chpasswd', 'passwd'],
]

const FETCH: ReadonlyArray<[string, string]> = [
  ['apt-get', 'apt'],
  ['dpkg-deb', 'dpkg'],
]

/** Full path of a program, looking in PATH and the sbin directories root has. */
export function findProgram(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/bin', '/bin']
  for (const dir of dirs.filter(Boolean)) {
    try {
      accessSync(join(dir, name), constants.X_OK)
      return join(dir, name)
    } catch {
      // next
    }
  }
  return undefined
}

export interface PrerequisiteOptions {
  /** The lab runs the machine's etcd 3.4 package. */
  etcd34: boolean
  /** The lab fetches etcd 3.5 with apt-get. */
  fetch: boolean
  /** Hosts boot systemd (--init systemd). */
  systemd?: boolean
  /** The lab makes certificates (--tls). */
  tls?: boolean
  /** Program lookup (tests replace it). Default findProgram. */
  find?: (program: string) => string | undefined
  /** Effective user id (tests replace it). Default process.getuid(). */
  uid?: number
}

/** The programs missing for a lab running the given etcd source, as [program, package]. */
export function missingPrograms(options: PrerequisiteOptions): Array<[string, string]> {
  const find = options.find ?? findProgram
  const wanted = [...PROGRAMS, ...(options.etcd34 ? ETCD_34 : []), ...(options.fetch ? FETCH : []),
    ...(options.systemd ? SYSTEMD : []), ...(options.tls ? [['openssl', 'openssl'] as [string, string]] : [])]
  if (options.systemd && !existsSync('/lib/systemd/systemd')) return [...wanted.filter(([p]) => !find(p)), ['/lib/systemd/systemd', 'systemd']]
  return wanted.filter(([program]) => !find(program))
}

export function checkPrerequisites(options: PrerequisiteOptions): void {
  if ((options.uid ?? process.getuid?.()) !== 0) {
    throw new InputError('the lab needs root: it creates network namespaces, mounts and a bridge', {
      hint: 'Run it as root (sudo npx zx scripts/lab.mjs ...).',
    })
  }
  const missing = missingPrograms(options)
  if (missing.length > 0) {
    const packages = [...new Set(missing.map(([, pkg]) => pkg))]
    throw new InputError(`missing ${missing.map(([p]) => p).join(', ')}`, {
      hint: `Install them: apt-get install -y ${packages.join(' ')}`,
    })
  }
  if (!/\toverlay$/m.test(readFileSync('/proc/filesystems', 'utf8'))) {
    throw new InputError('this kernel has no overlayfs, which lab hosts use as their root file system', {
      hint: 'Load it: modprobe overlay',
    })
  }
}

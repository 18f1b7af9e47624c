// The shell script a lab host boots with. It runs as PID 1 of a fresh PID
// namespace, in a fresh mount and UTS namespace, inside the host's network
// namespace (`ip netns exec NS unshare --pid --fork --mount --uts ...`), and:
//   1. mounts a tmpfs of --disk size (the host's disk; or, with --disk-dir, a
//      bind mount of a directory on the machine's own disk, for data larger
//      than RAM) holding an overlay's upper and work directories, and the
//      overlay (lower = the machine's /) as the host's root: copy-on-write, so
//      writes stay on this host;
//   2. gives that root its own /proc (its own PID namespace), /sys (its own
//      network namespace), a minimal /dev with a private devpts, tmpfs /run
//      and /tmp;
//   3. installs the host's identity (hostname, /etc/hosts, sshd config, host
//      key, root's authorized_keys) and removes what must not show through;
//   4. pivot_root into it and detaches the machine's root, so the host sees
//      only its own mounts (a chroot would still show and reach the machine's);
//   5. execs tini as PID 1 (it reaps orphaned daemons) running sshd; or, for a
//      systemd host (systemd-host.ts), systemd itself, with its own cgroup2
//      subtree mounted at /sys/fs/cgroup (the launcher put the host in a cgroup
//      of its own and unshared a cgroup namespace), /sys and /proc/sys read-only
//      so that udev and sysctl units leave the machine's devices and kernel alone.
// The mounts live only in the host's mount namespace: when its PID 1 dies,
// they go with it and nothing is left mounted on the machine.
import { sh, joinScripts, type Script } from '../shell/sh.ts'
import { SSHD_CONFIG_PATH } from './host-files.ts'

export interface HostInitSpec {
  hostname: string
  /** Mount point for the tmpfs disk (a directory on the machine). */
  diskDir: string
  /** Mount point for the overlay root (a directory on the machine). */
  rootDir: string
  /** tmpfs size of the disk, e.g. 2G. */
  diskSize: string
  /** A directory on the machine (empty, made by `up`) to use as the disk instead of a tmpfs. */
  diskBacking?: string
  /** Files copied into the host's root: a path on the machine → an absolute path on the host. */
  install: ReadonlyArray<{ from: string; to: string; mode: string }>
  /** Paths deleted from the host's root (overlay whiteouts: the machine keeps them). */
  remove: readonly string[]
  /** Directories made (with parents) before the files are installed. */
  mkdirs: ReadonlyArray<{ path: string; mode: string }>
  /** Boot systemd instead of tini + sshd; `setup` runs (with "$R" the root) before pivot_root. */
  systemd?: { setup: Script; container: string }
  /** /bin/sh is bash on this host (in its own root only: an overlay copy-up). */
  binSh?: 'bash'
}

/** Device nodes a minimal /dev needs: name, type, major, minor. */
const DEVICES: ReadonlyArray<[string, number, number]> = [
  ['null', 1, 3], ['zero', 1, 5], ['full', 1, 7], ['random', 1, 8], ['urandom', 1, 9], ['tty', 5, 0],
]

export function hostInitScript(spec: HostInitSpec): string {
  const lines: Script[] = [
    sh`set -eu`,
    sh`R=${spec.rootDir}`,
    sh`D=${spec.diskDir}`,
    spec.diskBacking
      ? sh`mount --bind ${spec.diskBacking} "$D"`
      : sh`mount -t tmpfs -o ${`size=${spec.diskSize},mode=0755`} lab-disk "$D"`,
    sh`mkdir "$D/upper" "$D/work"`,
    sh`mount -t overlay -o "lowerdir=/,upperdir=$D/upper,workdir=$D/work" lab-root "$R"`,
    sh`mount -t proc -o nosuid,nodev,noexec proc "$R/proc"`,
    sh`mount -t sysfs -o ${spec.systemd ? 'ro,nosuid,nodev,noexec' : 'nosuid,nodev,noexec'} sysfs "$R/sys"`,
    ...(spec.systemd ? [
      sh`mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$R/sys/fs/cgroup"`,
      sh`mount --bind "$R/proc/sys" "$R/proc/sys"`,
      sh`mount -o remount,bind,ro "$R/proc/sys"`,
    ] : []),
    sh`mount -t tmpfs -o nosuid,mode=0755,size=16m dev "$R/dev"`,
    ...DEVICES.map(([name, major, minor]) => sh`mknod -m 0666 "$R"${`/dev/${name}`} c ${major} ${minor}`),
    sh`mkdir -m 0755 "$R/dev/pts"`,
    sh`mkdir -m 1777 "$R/dev/shm"`,
    sh`mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$R/dev/pts"`,
    sh`ln -s pts/ptmx "$R/dev/ptmx"`,
    sh`ln -s /proc/self/fd "$R/dev/fd"`,
    sh`ln -s /proc/self/fd/0 "$R/dev/stdin"`,
    sh`ln -s /proc/self/fd/1 "$R/dev/stdout"`,
    sh`ln -s /proc/self/fd/2 "$R/dev/stderr"`,
    sh`mount -t tmpfs -o nosuid,nodev,mode=1777 shm "$R/dev/shm"`,
    sh`mount -t tmpfs -o nosuid,nodev,mode=0755,size=64m run "$R/run"`,
    sh`mkdir -m 0755 "$R/run/sshd" "$R/run/lock"`,
    sh`mount -t tmpfs -o ${`nosuid,nodev,mode=1777,size=${spec.diskSize}`} tmp "$R/tmp"`,
    sh`hostname ${spec.hostname}`,
    ...spec.remove.map((p) => sh`rm -rf "$R"${p}`),
    ...spec.mkdirs.map((d) => sh`mkdir -p -m ${d.mode} "$R"${d.path}`),
    ...spec.install.map((f) => sh`install -D -m ${f.mode} ${f.from} "$R"${f.to}`),
    ...(spec.binSh === 'bash' ? [sh`test -x "$R/bin/bash"`, sh`ln -sfn bash "$R/bin/sh"`] : []),
    ...(spec.systemd ? [spec.systemd.setup] : []),
    sh`cd "$R"`,
    sh`mkdir .machine-root`,
    sh`pivot_root . .machine-root`,
    sh`cd /`,
    sh`umount -l /.machine-root`,
    sh`rmdir /.machine-root`,
    spec.systemd
      ? sh`exec env -i container=${spec.systemd.container} /lib/systemd/systemd --unit=multi-user.target`
      : sh`exec /usr/bin/tini -- /usr/sbin/sshd -D -e -f ${SSHD_CONFIG_PATH}`,
  ]
  return `${joinScripts(lines).text}\n`
}

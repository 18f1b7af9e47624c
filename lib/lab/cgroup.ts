// A cgroup2 directory per systemd lab host. systemd as PID 1 needs a cgroup2
// tree it may write: the host's launcher moves itself into a fresh child
// cgroup, then unshares a cgroup namespace, so the host's /sys/fs/cgroup is
// that child and everything systemd makes stays below it. Machines with hybrid
// cgroups (v1 controllers plus cgroup2 at /sys/fs/cgroup/unified) and pure
// cgroup2 machines both work; `down` removes the directories, deepest first.
import { accessSync, constants, readFileSync, readdirSync, rmdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { InputError } from '../errors.ts'

/** Where this machine mounts cgroup2 (first mount found), or undefined. */
export function cgroup2Mount(): string | undefined {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
    const [left, right] = line.split(' - ')
    if (!right || right.split(' ')[0] !== 'cgroup2') continue
    const fields = left.split(' ')
    if (fields[3] === '/') return fields[4]
  }
  return undefined
}

/** The cgroup directory of lab `lab`'s host `index`. */
export function hostCgroup(lab: string, index: number): string {
  const mount = cgroup2Mount()
  if (!mount) {
    throw new InputError('this machine has no cgroup2 hierarchy mounted, which a systemd lab host needs', {
      hint: 'Mount one (mount -t cgroup2 none /sys/fs/cgroup/unified) or use --init tini.',
    })
  }
  try {
    accessSync(mount, constants.W_OK)
  } catch (e) {
    throw new InputError(`the cgroup2 hierarchy at ${mount} is not writable here (${(e as NodeJS.ErrnoException).code}), and a systemd lab host needs a cgroup of its own in it`, {
      hint: 'Run the lab on a machine (or VM) where root can create cgroups, or use --init tini.',
    })
  }
  return join(mount, `etcd-rescue-lab-${lab}-h${index}`)
}

/** Remove a cgroup and its descendants once their processes are gone; returns false if some remain. */
export async function removeCgroup(dir: string, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      removeTree(dir)
      return true
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      if (code === 'ENOENT') return true
      if (code !== 'EBUSY' || Date.now() > deadline) return false
      await new Promise((r) => setTimeout(r, 50)) // exiting processes leave their cgroup a moment later
    }
  }
}

function removeTree(dir: string): void {
  for (const entry of readdirSync(dir)) {
    const child = join(dir, entry)
    if (statSync(child).isDirectory()) removeTree(child)
  }
  rmdirSync(dir) // a cgroup directory's files go with it; rm -r would fail on them
}

// `lab down`: remove exactly what state.json records (processes by PID and start
// time, namespaces and links by name, our own files) and nothing else. Works on
// a lab whose hosts already died or whose `up` failed half way, and twice in a
// row (the second run finds nothing to do).
import { readFileSync, rmSync, rmdirSync } from 'node:fs'
import { RescueError } from '../errors.ts'
import { join } from 'node:path'
import { removeCgroup } from './cgroup.ts'
import { KUBESPRAY_INVENTORY_FILES } from './kubespray-inventory.ts'
import { killHost } from './host.ts'
import { withLock } from './lock.ts'
import { DEFAULT_LAB_NAME, belongsToLab, ifbName, validateLabName } from './names.ts'
import { deleteLink, deleteNetns, linkList, netnsList } from './net.ts'
import { labBaseDir, labPaths, type LabPaths } from './paths.ts'
import { readState, type LabState } from './state.ts'

export interface LabDownOptions {
  /** Default "lab". */
  name?: string
  /** Directory holding labs' state; default $ETCD_RESCUE_LAB_DIR or <repo>/.lab. */
  dir?: string
}

export interface LabDownResult {
  name: string
  /** False when there was no lab of that name here (nothing done). */
  found: boolean
  /** Namespaces/links named like this lab that no state here records: left alone. */
  foreign: string[]
}

export async function labDown(options: LabDownOptions = {}): Promise<LabDownResult> {
  const name = validateLabName(options.name ?? DEFAULT_LAB_NAME)
  if (process.getuid?.() !== 0) throw new RescueError('the lab needs root to remove namespaces and links', { exitCode: 2 })
  const paths = labPaths(labBaseDir(options.dir), name)
  const state = readState(paths)
  if (!state) return { name, found: false, foreign: await foreignObjects(name) }
  await withLock(`${paths.dir}.lock`, async () => {
    const current = readState(paths)
    if (current) await teardown(current, paths)
  })
  return { name, found: true, foreign: [] }
}

/** Netns and links named like lab `name`'s that exist on the machine. */
export async function foreignObjects(name: string): Promise<string[]> {
  const [netns, links] = await Promise.all([netnsList(), linkList()])
  return [
    ...netns.filter((n) => belongsToLab(name, n)).map((n) => `netns ${n}`),
    ...links.filter((l) => belongsToLab(name, l)).map((l) => `link ${l}`),
  ]
}

/** Undo everything `state` records. Also the rollback of a failed `up`. */
export async function teardown(state: LabState, paths: LabPaths): Promise<void> {
  const stuck = (await Promise.all(state.hosts.map(killHost))).flat()
  // Deleting a namespace deletes the veth pair too; the explicit link delete covers a veth left outside one.
  for (const host of state.hosts) {
    if (host.netns) await deleteNetns(host.netns)
    if (host.veth) await deleteLink(host.veth)
  }
  if (state.bridge) await deleteLink(state.bridge)
  await deleteLink(ifbName(state.name))
  if (stuck.length > 0) {
    throw new RescueError(`processes ${stuck.join(', ')} of lab "${state.name}" would not die; its files are kept`, { where: paths.dir })
  }
  // The hosts' mounts lived in their own mount namespaces, gone with their PID 1.
  // Should any be visible here, deleting recursively would walk into it: refuse.
  const mounted = [...mountsUnder(paths.dir), ...(state.diskDir ? mountsUnder(state.diskDir) : [])]
  if (mounted.length > 0) {
    throw new RescueError(`mounts remain under ${paths.dir}: ${mounted.join(', ')}`, { hint: 'Unmount them, then run down again.' })
  }
  const cgroupsLeft = []
  for (const host of state.hosts) if (host.cgroup && !(await removeCgroup(host.cgroup))) cgroupsLeft.push(host.cgroup)
  if (cgroupsLeft.length > 0) throw new RescueError(`cgroups of lab "${state.name}" still hold processes: ${cgroupsLeft.join(', ')}`, { where: paths.dir })
  rmSync(paths.hostsDir, { recursive: true, force: true })
  // The hosts' disks on the machine's disk (`up --disk-dir`): the directory up made and recorded.
  if (state.diskDir) rmSync(state.diskDir, { recursive: true, force: true })
  rmSync(paths.pki, { recursive: true, force: true })
  // group_vars/: only the files up wrote, then the directories they leave empty;
  // a file the operator added there (etcd_drill_allowed, say) stays, and so does the lab dir.
  for (const rel of KUBESPRAY_INVENTORY_FILES.filter((f) => f.startsWith('group_vars/'))) rmSync(join(paths.dir, rel), { force: true })
  for (const dir of ['group_vars/all', 'group_vars/k8s_cluster', 'group_vars']) {
    try {
      rmdirSync(join(paths.dir, dir))
    } catch {
      // absent, or holds the operator's files
    }
  }
  for (const f of [paths.privateKey, paths.publicKey, paths.knownHosts, paths.inventory, paths.loadManifest, paths.becomePassword, `${paths.state}.tmp`, paths.state]) {
    rmSync(f, { force: true })
  }
  try {
    rmdirSync(paths.dir) // only if nothing else was put there
  } catch {
    // not empty: leave the operator's own files
  }
}

/** Mount points at or below `dir` in this (the root) mount namespace. */
export function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .map((line) => line.split(' ')[4])
    .filter((mp): mp is string => !!mp && (mp === dir || mp.startsWith(`${dir}/`)))
}
